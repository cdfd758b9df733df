"""Plugin bundles and installation (build.py bundles / install-krita)."""
import json
import zipfile

import bundle


def test_krita_zip_has_what_krita_imports(tmp_path):
    path = bundle.write_krita_zip(tmp_path / "spritefit-krita.zip")
    names = set(zipfile.ZipFile(path).namelist())
    assert {"spritefit_krita/", "spritefit_krita.desktop", "spritefit_krita/__init__.py", "spritefit_krita/spritefit_client.py",
            "spritefit_krita/spritefit_krita.action", "spritefit_krita/manual.html"} <= names
    assert "spritefit_krita/worker.json" not in names     # a bundle carries no machine's path
    client = zipfile.ZipFile(path).read("spritefit_krita/spritefit_client.py")
    assert client == bundle.CLIENT.read_bytes()           # vendored, not a dangling link


def test_install_krita_enables_the_plugin_and_keeps_other_settings(tmp_path):
    kritarc = tmp_path / "kritarc"
    kritarc.write_text("[General]\nCase=Kept\n\n[python]\nenable_other=true\n")
    package = bundle.install_krita(tmp_path / "krita", kritarc, "/opt/spritefit/bin/python")
    assert json.loads((package / "worker.json").read_text()) == {"python": "/opt/spritefit/bin/python"}
    assert (tmp_path / "krita" / "pykrita" / "spritefit_krita.desktop").exists()
    assert (tmp_path / "krita" / "actions" / "spritefit_krita.action").exists()
    assert not (package / "spritefit_krita.action").exists()   # Krita would see the action twice
    text = kritarc.read_text()
    assert "Case=Kept" in text and "enable_other=true" in text and "enable_spritefit_krita=true" in text


def test_gimp_and_blender_bundles(tmp_path):
    gimp = zipfile.ZipFile(bundle.write_gimp_zip(tmp_path / "gimp.zip"))
    script = gimp.getinfo("spritefit_gimp/spritefit_gimp.py")
    assert script.external_attr >> 16 & 0o111                 # GIMP runs only executable plug-ins
    assert gimp.read(script).startswith(b"#!/usr/bin/env python3")
    blender = set(zipfile.ZipFile(bundle.write_blender_zip(tmp_path / "blender.zip")).namelist())
    assert {"spritefit_blender/__init__.py", "spritefit_blender/blender_manifest.toml",
            "spritefit_blender/spritefit_client.py"} <= blender
    folder = bundle.install_gimp(tmp_path / "plug-ins", "/opt/py")
    assert (folder / "spritefit_gimp.py").stat().st_mode & 0o111
    assert json.loads((folder / "worker.json").read_text()) == {"python": "/opt/py"}
    assert (bundle.install_blender(tmp_path / "addons", "/opt/py") / "build.py").exists()
