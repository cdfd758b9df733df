"""Persistent settings, kept in Krita's own configuration (kritarc, group "spritefit").

The worker's Python defaults to what `build.py install-krita` (or the bundle) recorded in
worker.json beside this file; $SPRITEFIT_PYTHON overrides both (see the client).
"""
from __future__ import annotations

import json
import os

from .spritefit_client import ADVANCED, BASIC, control_default, option_value, shown_options

GROUP = "spritefit"
OPTIONS_VERSION = 2     # of the stored options: 2 since the controls follow the option schema
DOCKER_DEFAULTS = {"sprite_source": "layers", "folder": ""}   # the docker's own; the fit's: the schema
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

    def options(self) -> dict:
        stored = self.krita.readSetting(GROUP, "options", "")
        try:
            values = json.loads(stored) if stored else {}
        except ValueError:
            values = {}
        if not isinstance(values, dict):
            values = {}
        if values.get("version") != OPTIONS_VERSION:
            # Before the option schema, iterations 0 meant "the preset's" (now: none at all).
            values = {k: v for k, v in values.items() if k != "iters"}
        # Each stored value is checked against its option's type, choices and range, so a
        # hand-edited kritarc cannot put a string into a spin box.
        shown = {o["name"]: (option_value(o, values[o["name"]]) if o["name"] in values else control_default(o))
                 for o in shown_options(BASIC) + shown_options(ADVANCED)}
        docker = {key: str(values.get(key, default)) for key, default in DOCKER_DEFAULTS.items()}
        return {**shown, **docker}

    def set_options(self, options: dict) -> None:
        known = set(self.options())
        kept = {k: v for k, v in options.items() if k in known}
        self.krita.writeSetting(GROUP, "options", json.dumps(dict(kept, version=OPTIONS_VERSION)))
