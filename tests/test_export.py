"""Exports reopened and compared with our renderer: PSD (psd-tools and Krita), SVG (resvg), and
re-renders at other scales."""
import base64
import io
import json

import numpy as np
import pytest
import resvg_py
from PIL import Image
from psd_tools import PSDImage
from psd_tools.compression import decompress
from psd_tools.constants import Compression

from hosts import krita_open_psd
from spritefit.errors import SceneFormatError
from spritefit.export import export_scene, parse_formats
from spritefit.render import COLOR_MODES, render_scene_array, scene_atlas
from spritefit.native_module import _native
from spritefit.render import scaled_canvas
from spritefit.render.layers import _reference_patches, instance_layers
from spritefit.scene import Scene
from spritefit.sprites import load_sprites


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(np.mean((a - b) ** 2), 1e-12)))


def random_scene(n=120, width=96, height=64, mode="tint", background=(1.0, 1.0, 1.0), seed=0,
                 sizes=(2.0, 14.0)) -> Scene:
    rng = np.random.default_rng(seed)
    sprites = load_sprites("shapes")[:6] + load_sprites("leaves")[:2]
    return Scene(width, height, sprites, xy=rng.uniform(-5, [width + 5, height + 5], (n, 2)),
                 size=rng.uniform(*sizes, n), theta=rng.uniform(-np.pi, np.pi, n), color=rng.random((n, 3)),
                 opacity=rng.uniform(0.3, 1.0, n), sprite=rng.integers(0, len(sprites), n),
                 mix=rng.random(n), color_mode=mode, background=background)


def premultiplied(rgba: np.ndarray) -> np.ndarray:
    """Straight colour is noise where alpha is nearly 0; compare what is seen."""
    return np.concatenate([rgba[..., :3] * rgba[..., 3:], rgba[..., 3:]], axis=-1)


def over_white(rgba: np.ndarray) -> np.ndarray:
    return rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])


# -- PSD -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def psd_file(tmp_path_factory):
    scene = random_scene(mode="mix")
    target = np.random.default_rng(1).random((scene.height, scene.width, 3)).astype(np.float32)
    path = tmp_path_factory.mktemp("psd") / "result.psd"
    export_scene(scene, {"psd": path}, target=target)
    return scene, path


def test_psd_has_one_layer_per_sprite_in_a_group(psd_file):
    scene, path = psd_file
    psd = PSDImage.open(path)
    assert psd.size == (scene.width, scene.height) and psd.depth == 8
    background, group, target = list(psd)
    assert background.name == "background" and background.visible
    assert target.name == "target (reference)" and not target.visible
    assert group.is_group() and group.name == f"SpriteFit ({len(scene)} sprites)"
    expected = list(instance_layers(scene, scene_atlas(scene)))
    assert 0.8 * len(scene) < len(expected) < len(scene)   # some instances lie wholly off the canvas
    layers = list(group)
    assert [layer.name for layer in layers] == [e.name for e in expected]   # painter's order
    for layer, e in zip(layers, expected):
        assert (layer.left, layer.top, layer.width, layer.height) == (e.left, e.top, e.rgba.shape[1], e.rgba.shape[0])
        assert layer.opacity == round(e.opacity * 255)
        assert np.array_equal(np.asarray(layer.topil()), e.rgba)


def test_psd_layers_composite_to_our_render(psd_file):
    scene, path = psd_file
    ours = render_scene_array(scene)
    psd = PSDImage.open(path)
    psd[2].visible = False   # psd-tools composites hidden layers' groups by visibility flags; be explicit
    layered = np.asarray(psd.composite(force=True).convert("RGB"), np.float32) / 255
    assert psnr(layered, ours) > 40
    merged = np.asarray(psd.topil().convert("RGB"), np.float32) / 255   # the saved merged image
    assert psnr(merged, ours) > 45


def test_psd_opens_in_krita_with_every_layer_in_place(psd_file, tmp_path):
    scene, path = psd_file
    report = krita_open_psd(path, tmp_path)
    assert report["opened"] and (report["width"], report["height"]) == (scene.width, scene.height)
    layers = report["layers"]
    expected = list(instance_layers(scene, scene_atlas(scene)))
    assert len(layers) == len(expected) + 3
    assert [layer["name"] for layer in layers[2:-1]] == [e.name for e in expected]
    for layer, e in zip(layers[2:-1], expected):
        # Krita reports the bounds of the visible pixels: those of our tight layers.
        assert (layer["x"], layer["y"], layer["w"], layer["h"]) == (e.left, e.top, *e.rgba.shape[1::-1]), e.name
        assert layer["opacity"] == round(e.opacity * 255) and layer["depth"] == 1
    assert layers[-1]["name"] == "target (reference)" and not layers[-1]["visible"]
    bgra = np.frombuffer(base64.b64decode(report["projection"]), np.uint8).reshape(scene.height, scene.width, 4)
    projection = bgra[..., [2, 1, 0]].astype(np.float32) / 255
    assert psnr(projection, render_scene_array(scene)) > 40


def test_psd_with_transparent_background_and_10000_layers(tmp_path):
    scene = random_scene(n=10_000, width=300, height=200, background=None, sizes=(1.0, 4.0), seed=3)
    export_scene(scene, {"psd": tmp_path / "many.psd"})
    psd = PSDImage.open(tmp_path / "many.psd")
    group, = list(psd)   # no background layer, no target given
    assert 9_000 < len(group) <= 10_000   # minus those wholly off the canvas
    merged = np.asarray(psd.topil(), np.float32) / 255
    assert merged.shape == (200, 300, 4)
    assert psnr(premultiplied(merged), premultiplied(render_scene_array(scene))) > 40


@pytest.mark.parametrize("mode", COLOR_MODES)
def test_native_layers_are_the_reference_sampler_s(mode):
    """The layers drawn by the native module (what exports and the editors get) have the reference
    sampler's bounds and pixels, up to one 8-bit step, at the fit's scale and at another."""
    scene = random_scene(n=200, mode=mode, seed=4)
    for scale in (1.0, 2.5):
        atlas = scene_atlas(scene, scale)
        native = list(instance_layers(scene, atlas, scale))
        reference = list(_reference_patches(scene, atlas, scale, *scaled_canvas(scene, scale)))
        assert 0.8 * len(scene) < len(native) == len(reference)
        for layer, (index, left, top, rgba) in zip(native, reference):
            assert (layer.index, layer.left, layer.top, layer.rgba.shape) == (index, left, top, rgba.shape)
            assert np.abs(layer.rgba.astype(int) - rgba).max() <= 1


def test_packbits_channels_unpack_with_psd_tools():
    rng = np.random.default_rng(0)
    for case in range(300):
        width, rows = int(rng.integers(1, 700)), int(rng.integers(1, 5))
        image = rng.integers(0, int(rng.integers(1, 5)), (rows, width, 4)).astype(np.uint8)
        image[:, : width // 3] = case % 256                                        # long runs
        for plane in (image[..., case % 4], image[:, ::-1, 0][:, ::-1]):          # strided views
            packed = _native.packbits_channel(plane)
            assert decompress(packed, Compression.RLE, width, rows, 8) == plane.tobytes()
            assert len(packed) <= rows * (2 + width + -(-width // 128))           # PackBits' own bound


# -- SVG -------------------------------------------------------------------------------------------

def rasterise_svg(path, **options) -> np.ndarray:
    png = resvg_py.svg_to_bytes(svg_path=str(path), **options)
    return np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGBA"), np.float32) / 255


def fitted_like_scene(mode: str, background=(0.9, 0.8, 0.2)) -> Scene:
    """Colours vary smoothly with position, as in a fitted scene where neighbours are alike.
    Saturated random colours at every edge would measure little but how differently two
    rasterisers anti-alias (resvg's pixel coverage against our bilinear samples at pixel centres),
    and sprites drawn far below their bitmap's size how resvg aliases without mip-maps."""
    scene = random_scene(mode=mode, background=background, sizes=(5.0, 20.0))
    x, y = scene.xy[:, :1] / scene.width, scene.xy[:, 1:] / scene.height
    scene.color = (0.5 + 0.35 * np.sin(3 * x + 5 * y + np.array([0.0, 2.0, 4.0]))).astype(np.float32)
    return scene


@pytest.mark.parametrize("mode", COLOR_MODES)
def test_svg_rasterised_by_resvg_matches_our_render(tmp_path, mode):
    scene = fitted_like_scene(mode)
    export_scene(scene, {"svg": tmp_path / "result.svg"})
    text = (tmp_path / "result.svg").read_text()
    assert text.count("<image ") == len(scene.sprites) and text.count("<use ") == len(scene)
    assert psnr(rasterise_svg(tmp_path / "result.svg")[..., :3], render_scene_array(scene)) > 30


def test_linked_svg_references_sprite_files_and_scales(tmp_path):
    scene = fitted_like_scene("original", background=None)
    export_scene(scene, {"svg": tmp_path / "vector.svg"}, svg_linked=True, scale=2.0)
    text = (tmp_path / "vector.svg").read_text()
    assert "data:image" not in text and len(list((tmp_path / "vector-sprites").glob("*.png"))) == len(scene.sprites)
    drawn = rasterise_svg(tmp_path / "vector.svg", resources_dir=str(tmp_path))
    assert drawn.shape == (2 * scene.height, 2 * scene.width, 4)
    assert psnr(over_white(drawn), over_white(render_scene_array(scene, scale=2.0))) > 30


# -- re-rendering at other scales ----------------------------------------------------------------

def test_rerender_at_scale_2_matches_the_fit_resolution_render(tmp_path):
    scene = random_scene(n=80, sizes=(3.0, 12.0))
    scene.save(tmp_path / "scene.json")
    export_scene(Scene.load(tmp_path / "scene.json"), {"png": tmp_path / "x2.png"}, scale=2.0)
    big = Image.open(tmp_path / "x2.png")
    assert big.size == (2 * scene.width, 2 * scene.height)
    down = np.asarray(big.resize((scene.width, scene.height), Image.BOX), np.float32) / 255
    assert psnr(down, render_scene_array(scene)) > 35


def test_every_format_in_one_call_and_a_failed_png_still_raises(tmp_path):
    """The PNG is written beside the other formats (on a thread of its own): all four files come
    out whole, and the PNG's error reaches the caller once the others are done."""
    scene = random_scene(n=60)
    names = {"png": "r.png", "psd": "r.psd", "svg": "r.svg", "json": "r.json"}
    export_scene(scene, {f: tmp_path / name for f, name in names.items()})
    assert np.array_equal(np.asarray(Image.open(tmp_path / "r.png"), np.uint8)[..., :3],
                          (np.clip(render_scene_array(scene), 0, 1) * 255 + 0.5).astype(np.uint8)[..., :3])
    assert any(layer.kind == "pixel" for layer in PSDImage.open(tmp_path / "r.psd").descendants())
    assert Scene.load(tmp_path / "r.json").width == scene.width
    with pytest.raises(OSError):
        export_scene(scene, {"png": tmp_path / "missing" / "r.png", "svg": tmp_path / "after.svg"})
    assert (tmp_path / "after.svg").exists()


def test_formats_are_parsed_with_clear_errors():
    assert parse_formats("png, svg,png") == ["png", "svg"]
    with pytest.raises(Exception, match="unknown format tiff"):
        parse_formats("png,tiff")


def test_ten_million_instances_are_refused_before_parsing(tmp_path):
    data = random_scene(n=1).to_dict()
    text = json.dumps(data).replace('"instances": [', '"instances": [' + '{"sprite": 0},' * 10_000_000, 1)
    (tmp_path / "huge.json").write_text(text)
    with pytest.raises(SceneFormatError, match="more than 1,000,000 instances"):
        Scene.load(tmp_path / "huge.json")
