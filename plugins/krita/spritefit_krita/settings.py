"""Persistent settings, kept in Krita's own configuration (kritarc, group "spritefit").

The worker's Python defaults to what `build.py install-krita` (or the bundle) recorded in
worker.json beside this file; $SPRITEFIT_PYTHON overrides both (see the client).
"""
from __future__ import annotations

import json
import os

GROUP = "spritefit"
DEFAULTS = {"n": 500, "iters": 0, "size": 512, "preset": "balanced", "color_mode": "tint",
            "sprite_source": "layers", "folder": "", "sprite_alpha": "auto"}
BUNDLED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.json")


def bundled_python() -> str:
    try:
        with open(BUNDLED, encoding="utf-8") as f:
            return str(json.load(f).get("python", ""))
    except (OSError, ValueError):
        return ""


class Settings:
    """Typed access to the plugin's settings through Krita.readSetting/writeSetting."""

    def __init__(self, krita):
        self.krita = krita

    def worker_python(self) -> str:
        return self.krita.readSetting(GROUP, "worker_python", "") or bundled_python()

    def set_worker_python(self, path: str) -> None:
        self.krita.writeSetting(GROUP, "worker_python", path)

    def engine_choices(self) -> tuple[str, str]:
        """(the Python to build the engine from, empty: found; the PyTorch build: auto, cpu or cuda)."""
        return (self.krita.readSetting(GROUP, "engine_python", ""),
                self.krita.readSetting(GROUP, "engine_torch", "auto") or "auto")

    def set_engine_choices(self, python: str, torch: str) -> None:
        self.krita.writeSetting(GROUP, "engine_python", python)
        self.krita.writeSetting(GROUP, "engine_torch", torch)

    def cluster_address(self) -> str:
        return self.krita.readSetting(GROUP, "cluster_address", "")

    def set_cluster_address(self, address: str) -> None:
        self.krita.writeSetting(GROUP, "cluster_address", address)

    def options(self) -> dict:
        stored = self.krita.readSetting(GROUP, "options", "")
        try:
            values = json.loads(stored) if stored else {}
        except ValueError:
            values = {}
        # Each stored value is converted to its default's type, so a hand-edited kritarc cannot
        # put a string into a spin box.
        return {key: _like(default, values.get(key, default)) for key, default in DEFAULTS.items()}

    def set_options(self, options: dict) -> None:
        self.krita.writeSetting(GROUP, "options", json.dumps({k: options[k] for k in DEFAULTS if k in options}))


def _like(default, value):
    try:
        return int(value) if isinstance(default, int) else str(value)
    except (TypeError, ValueError):
        return default
