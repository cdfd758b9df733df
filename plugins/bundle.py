"""Packaging the host plugins (standard library only; used by build.py and the tests).

Each bundle vendors the worker client and the engine installer (plugins/client/) into the
plugin's package, and may carry SpriteFit wheels in its engine/ folder for the installer (release
bundles do); an install for development records which Python runs the worker (worker.json).
"""
from __future__ import annotations

import configparser
import json
import shutil
import zipfile
from pathlib import Path

PLUGINS = Path(__file__).resolve().parent
CLIENT = PLUGINS / "client" / "spritefit_client.py"
# Vendored into every plugin: the worker client, the option schema its editors build their
# controls from, and the managed engine installer.
SHARED = [CLIENT, PLUGINS / "client" / "spritefit_live.py", PLUGINS / "client" / "spritefit_options.json",
          PLUGINS / "client" / "spritefit_engine.py"]
WHEELS_FOLDER = "engine"   # inside the plugin's package; spritefit_engine.bundled_wheels reads it
KRITA = PLUGINS / "krita"
KRITA_PACKAGE = "spritefit_krita"
GIMP_PLUGIN = "spritefit_gimp"
BLENDER_ADDON = "spritefit_blender"


def krita_files(python: str | None = None) -> dict[str, bytes]:
    """The Krita plugin as {path inside the resources' pykrita/ folder: bytes}."""
    files = {f"{KRITA_PACKAGE}.desktop": (KRITA / f"{KRITA_PACKAGE}.desktop").read_bytes(),
             f"{KRITA_PACKAGE}/manual.html": (KRITA / "manual.html").read_bytes()}
    for path in sorted((KRITA / KRITA_PACKAGE).iterdir()):
        if path.is_file() and path.suffix == ".py":
            files[f"{KRITA_PACKAGE}/{path.name}"] = path.read_bytes()   # the client's symlink is read through
    files.update({f"{KRITA_PACKAGE}/{path.name}": path.read_bytes() for path in SHARED})
    if python:
        files[f"{KRITA_PACKAGE}/worker.json"] = json.dumps({"python": python}).encode()
    return files


def wheel_files(package: str, wheels) -> dict[str, bytes]:
    """Wheels carried in a plugin's engine/ folder."""
    return {f"{package}/{WHEELS_FOLDER}/{Path(w).name}": Path(w).read_bytes() for w in wheels}


def write_krita_zip(path: Path, python: str | None = None, wheels=()) -> Path:
    """The zip that Tools > Scripts > Import Python Plugin from File… installs (the importer
    finds the .action file anywhere in it and copies it to the resources' actions/ folder)."""
    files = dict(krita_files(python), **wheel_files(KRITA_PACKAGE, wheels))
    files[f"{KRITA_PACKAGE}/{KRITA_PACKAGE}.action"] = (KRITA / KRITA_PACKAGE / f"{KRITA_PACKAGE}.action").read_bytes()
    return _write_zip(path, files)


def install_krita(resources: Path, kritarc: Path, python: str) -> Path:
    """Install the plugin into a Krita resources folder, enable it in kritarc, and point it at
    the worker's Python. Returns the installed package folder."""
    package = _install(resources / "pykrita", KRITA_PACKAGE, krita_files(python))
    actions = resources / "actions"
    actions.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(KRITA / KRITA_PACKAGE / f"{KRITA_PACKAGE}.action", actions / f"{KRITA_PACKAGE}.action")
    enable_in_kritarc(kritarc, KRITA_PACKAGE)
    return package


def enable_in_kritarc(kritarc: Path, name: str) -> None:
    """Set [python] enable_<name>=true, keeping the rest of the file as it is."""
    config = configparser.RawConfigParser(strict=False, interpolation=None)
    config.optionxform = str   # kritarc keys are case-sensitive
    if kritarc.exists():
        config.read(kritarc, encoding="utf-8")
    if not config.has_section("python"):
        config.add_section("python")
    config.set("python", f"enable_{name}", "true")
    kritarc.parent.mkdir(parents=True, exist_ok=True)
    with open(kritarc, "w", encoding="utf-8") as f:
        config.write(f, space_around_delimiters=False)


def _folder_files(folder: Path, python: str | None) -> dict[str, bytes]:
    """A plug-in folder with the client vendored in (and worker.json when a Python is given)."""
    files = {path.name: path.read_bytes() for path in sorted(folder.iterdir())
             if path.is_file() and path.suffix in (".py", ".toml")}
    files.update({path.name: path.read_bytes() for path in SHARED})
    if python:
        files["worker.json"] = json.dumps({"python": python}).encode()
    return files


def _write_zip(path: Path, files: dict[str, bytes], executable: tuple[str, ...] = ()) -> Path:
    """A zip with an entry for each top-level folder (Krita's importer looks for them), files
    with fixed dates (the same sources give the same zip) and Unix permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    folders = sorted({name.split("/")[0] + "/" for name in files if "/" in name})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for folder in folders:
            info = zipfile.ZipInfo(folder, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = 0o40755 << 16
            archive.writestr(info, b"")
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o755 if name in executable else 0o644) << 16
            archive.writestr(info, data)
    return path


def gimp_files(python: str | None = None) -> dict[str, bytes]:
    """The GIMP plug-in folder (GIMP wants <name>/<name>.py, executable)."""
    return {f"{GIMP_PLUGIN}/{name}": data
            for name, data in _folder_files(PLUGINS / "gimp" / GIMP_PLUGIN, python).items()}


def write_gimp_zip(path: Path, python: str | None = None, wheels=()) -> Path:
    """Unpack into GIMP's plug-ins folder (Edit > Preferences > Folders > Plug-ins)."""
    return _write_zip(path, dict(gimp_files(python), **wheel_files(GIMP_PLUGIN, wheels)),
                      executable=(f"{GIMP_PLUGIN}/{GIMP_PLUGIN}.py",))


def _install(parent: Path, name: str, files: dict[str, bytes]) -> Path:
    """Replace parent/name with `files` (paths relative to parent); returns the folder."""
    folder = parent / name
    shutil.rmtree(folder, ignore_errors=True)
    for relative, data in files.items():
        target = parent / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


def install_gimp(plug_ins: Path, python: str) -> Path:
    """Install the plug-in into a GIMP 3 plug-ins folder; returns its folder."""
    folder = _install(plug_ins, GIMP_PLUGIN, gimp_files(python))
    (folder / f"{GIMP_PLUGIN}.py").chmod(0o755)
    return folder


def blender_files(python: str | None = None) -> dict[str, bytes]:
    return {f"{BLENDER_ADDON}/{name}": data
            for name, data in _folder_files(PLUGINS / "blender" / BLENDER_ADDON, python).items()}


def write_blender_zip(path: Path, python: str | None = None, wheels=()) -> Path:
    """Installable with Edit > Preferences > Add-ons > Install… (legacy add-on, Blender 3.4+) or as
    an extension (its blender_manifest.toml, Blender 4.2+)."""
    return _write_zip(path, dict(blender_files(python), **wheel_files(BLENDER_ADDON, wheels)))


def install_blender(addons: Path, python: str) -> Path:
    """Install the add-on into a Blender scripts/addons folder; returns its folder."""
    return _install(addons, BLENDER_ADDON, blender_files(python))
