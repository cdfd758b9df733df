"""The release wheel (python build.py dist) installs and fits on a machine without a toolchain.

The wheel goes into a fresh virtual environment whose PATH holds nothing but that environment:
no compiler, no CMake, no nvcc. `spritefit fit` must then run on the native renderer. With the
native module broken, it must fall back to the reference renderer with one line of warning, and
`--backend native` must fail with one line naming the fix.

Needs dist/ (python build.py dist); `.ci/run` builds it and sets SPRITEFIT_REQUIRE_DIST=1.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from hosts import LOCAL_TORCH

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
TARGET = ROOT / "core" / "spritefit" / "data" / "targets" / "chelsea.png"
TOOLCHAIN = ("cc", "gcc", "g++", "c++", "clang", "cmake", "ninja", "nvcc", "make")


def release_wheel() -> Path:
    wheels = sorted(DIST.glob("spritefit-*-manylinux_*.whl"))
    if not wheels:
        if os.environ.get("SPRITEFIT_REQUIRE_DIST"):
            pytest.fail("no manylinux wheel in dist/: python build.py dist did not run")
        pytest.skip("no release wheel in dist/ (run python build.py dist)")
    return wheels[-1]


def bare_environment(venv_dir: Path) -> dict:
    """PATH with the virtual environment's bin folder alone, and no compiler variables."""
    env = {k: v for k, v in os.environ.items() if k not in ("CC", "CXX", "CUDACXX", "CMAKE", "PYTHONPATH")}
    env["PATH"] = str(venv_dir / "bin")
    return env


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    """A fresh venv with the release wheel (and the CPU torch pin), installed binary-only."""
    wheel = release_wheel()
    venv_dir = tmp_path_factory.mktemp("wheel") / "venv"
    venv.EnvBuilder(with_pip=True).create(venv_dir)
    env = bare_environment(venv_dir)
    python = str(venv_dir / "bin" / "python")
    found = subprocess.run([python, "-c", f"import shutil; print([t for t in {TOOLCHAIN!r} if shutil.which(t)])"],
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert found == "[]", f"the toolchain is still reachable: {found}"
    subprocess.run([python, "-m", "pip", "install", "-q", "--only-binary=:all:", LOCAL_TORCH, str(wheel)],
                   env=env, check=True, cwd=venv_dir)
    return venv_dir, env


def run_spritefit(venv_dir: Path, env: dict, *args, out: Path) -> subprocess.CompletedProcess:
    command = [str(venv_dir / "bin" / "spritefit"), "fit", str(TARGET), "--sprites", "shapes", "-n", "40",
               "--iters", "5", "--size", "64", "--out", str(out), "--force", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, cwd=out.parent, timeout=600)


def test_wheel_is_manylinux_with_native_module_and_no_libtorch():
    import zipfile
    wheel = release_wheel()
    names = zipfile.ZipFile(wheel).namelist()
    native = [n for n in names if n.startswith("spritefit/_native") and n.endswith(".so")]
    assert native, names[:20]
    vendored = [n for n in names if n.startswith("spritefit.libs/")]
    assert not [n for n in vendored if "torch" in n or "c10" in n], vendored


def test_wheel_installs_and_fits_natively_without_a_toolchain(wheel_env, tmp_path):
    venv_dir, env = wheel_env
    result = run_spritefit(venv_dir, env, "--backend", "native", out=tmp_path / "out")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "warning" not in result.stderr.lower(), result.stderr
    for name in ("result.png", "result.psd", "scene.json"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    python = str(venv_dir / "bin" / "python")
    probe = subprocess.run([python, "-c", "import spritefit._native as n, spritefit; "
                            "print(spritefit.__file__, n.with_openmp, n.with_cuda)"],
                           env=env, capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert str(venv_dir) in probe and "True" in probe.split()[1], probe   # the installed copy, with OpenMP
    # The CUDA kernels are in the wheel when it was built with nvcc; they need a GPU to run.
    assert probe.split()[2] == str(bool(shutil.which("nvcc"))), probe


def test_broken_native_module_falls_back_with_one_line(wheel_env, tmp_path):
    venv_dir, env = wheel_env
    site = next((venv_dir / "lib").glob("python3.*/site-packages/spritefit"))
    native = next(site.glob("_native*.so"))
    saved = native.read_bytes()
    try:
        native.write_bytes(b"not a shared library")
        fallback = run_spritefit(venv_dir, env, out=tmp_path / "fallback")
        assert fallback.returncode == 0, fallback.stderr[-2000:]
        warnings = [line for line in fallback.stderr.splitlines() if "native renderer" in line]
        assert len(warnings) == 1, fallback.stderr
        assert warnings[0].startswith("spritefit: warning:") and "pip install --force-reinstall" in warnings[0]
        assert "Traceback" not in fallback.stderr
        assert (tmp_path / "fallback" / "result.png").exists()

        forced = run_spritefit(venv_dir, env, "--backend", "native", out=tmp_path / "forced")
        assert forced.returncode == 2, forced.stderr
        errors = [line for line in forced.stderr.splitlines() if line.strip()]
        assert len(errors) == 1 and errors[0].startswith("spritefit: error:") and "reinstall" in errors[0], forced.stderr
    finally:
        native.write_bytes(saved)


RENDER_AND_GRADIENT = """
import sys
if sys.argv[2] == "variant":   # the editable install's finder would win over PYTHONPATH
    sys.meta_path = [f for f in sys.meta_path if "ScikitBuild" not in type(f).__name__]
import torch, spritefit._native as native
from spritefit.sprites import Atlas, load_sprites
from spritefit.render import render
torch.manual_seed(0)
atlas = Atlas(load_sprites("shapes"), 64)
n = 50
params = dict(xy=torch.rand(n, 2) * 48, log_size=torch.full((n,), 1.8), theta=torch.rand(n) * 6,
              color=torch.rand(n, 3), opacity=torch.rand(n))
for value in params.values():
    value.requires_grad_(True)
sprite = torch.randint(0, atlas.num_sprites, (n,))
out = render(atlas, **params, sprite=sprite, width=48, height=40, backend="native")
(out.image * torch.linspace(0, 1, 48)).sum().backward()
from spritefit.fitting.losses import ssim
image = out.image.detach().requires_grad_(True)
value = ssim(image, torch.rand(3, 40, 48))
value.backward()
torch.save({"openmp": native.with_openmp, "threads": native.cpu_threads(), "image": out.image.detach(),
            "grads": [value.grad for value in params.values()] + [image.grad], "ssim": value.detach()},
           sys.argv[1])
"""


# Build variants beside the installed module (OpenMP, with the AVX2 clones on x86-64 Linux):
# without OpenMP, as Apple clang builds it; without the AVX2 clones, as MSVC and arm64 build it.
VARIANTS = {"no-openmp": (["-DSPRITEFIT_OPENMP=off"], "-Werror", False),
            "baseline-simd": ([], "-Werror -DSPRITEFIT_NO_CLONES", True)}


@pytest.mark.skipif(sys.platform != "linux", reason="builds the module with gcc and CMake")
@pytest.mark.parametrize("variant_name", sorted(VARIANTS))
def test_native_module_variant_builds_and_matches(tmp_path, variant_name):
    """Each build variant compiles warning-free and renders the same images and gradients, and
    the same SSIM and SSIM gradient, as the installed build."""
    import pybind11
    import torch
    options, flags, with_openmp = VARIANTS[variant_name]
    build = tmp_path / "build"
    configure = ["cmake", "-S", str(ROOT / "csrc"), "-B", str(build), *options,
                 "-DSPRITEFIT_CUDA=off", f"-DPython_EXECUTABLE={sys.executable}",
                 f"-Dpybind11_DIR={pybind11.get_cmake_dir()}", f"-DCMAKE_CXX_FLAGS={flags}"]
    configured = subprocess.run(configure, capture_output=True, text=True)
    assert configured.returncode == 0, configured.stdout[-2000:] + configured.stderr[-2000:]
    assert ("OpenMP OFF" in configured.stdout) is not with_openmp
    built = subprocess.run(["cmake", "--build", str(build), "-j", "2"], capture_output=True, text=True)
    assert built.returncode == 0, built.stdout[-3000:]
    package = tmp_path / "variant" / "spritefit"
    shutil.copytree(ROOT / "core" / "spritefit", package, ignore=shutil.ignore_patterns("_native*", "__pycache__"))
    shutil.copy2(next(build.glob("_native*.so")), package)
    script = tmp_path / "render.py"
    script.write_text(RENDER_AND_GRADIENT)
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for name, env in (("variant", dict(clean, PYTHONPATH=str(tmp_path / "variant"))), ("installed", clean)):
        done = subprocess.run([sys.executable, str(script), str(tmp_path / f"{name}.pt"), name], cwd=build,
                              capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr[-2000:]
    variant, installed = torch.load(tmp_path / "variant.pt"), torch.load(tmp_path / "installed.pt")
    assert variant["openmp"] is with_openmp and installed["openmp"] is True
    if not with_openmp:
        assert variant["threads"] == 1
    torch.testing.assert_close(variant["image"], installed["image"], atol=1e-5, rtol=0)
    torch.testing.assert_close(variant["ssim"], installed["ssim"], atol=1e-6, rtol=0)
    for a, b in zip(variant["grads"], installed["grads"]):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
