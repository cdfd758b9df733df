"""CLIP text guidance, with a tiny randomly initialised open_clip model (nothing is downloaded).

open_clip needs a torchvision that matches torch; `python build.py test` runs this file in a
second environment that has both (.venv-clip). Elsewhere it skips, unless SPRITEFIT_REQUIRE_CLIP
is set (as build.py does there), when a missing open_clip fails it.
"""
import json
import os
import sys

import numpy as np
import pytest
import torch

if os.environ.get("SPRITEFIT_REQUIRE_CLIP"):
    import open_clip
else:
    open_clip = pytest.importorskip("open_clip", reason="open_clip (with a matching torchvision) is not installed")

from spritefit import fit
from spritefit.cli import main
from spritefit.errors import SpriteFitError
from spritefit.guidance import ClipGuidance, clip_similarity, load_clip, load_clip_guidance
from spritefit.render import render, render_scene
from spritefit.scene import Scene
from spritefit.sprites import Atlas, load_sprites

TINY = "spritefit-tiny-clip"
TINY_CONFIG = {"embed_dim": 32,
               "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
               "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """A tiny CLIP architecture registered with open_clip, and a random checkpoint of it on disk."""
    folder = tmp_path_factory.mktemp("clip")
    (folder / f"{TINY}.json").write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(folder / f"{TINY}.json")
    torch.manual_seed(0)
    model = open_clip.create_model(TINY)
    torch.save(model.state_dict(), folder / "tiny.pt")
    return folder / "tiny.pt"


def test_real_loader_reads_the_checkpoint(tiny_weights):
    model, tokenizer = load_clip(TINY, tiny_weights)
    saved = torch.load(tiny_weights, weights_only=True)
    loaded = model.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    assert tokenizer(["a fox"]).shape == (1, 77)


def test_gradients_reach_every_sprite_parameter(tiny_weights):
    guidance = load_clip_guidance("a red fox in the snow", TINY, tiny_weights, views=4)
    g = torch.Generator().manual_seed(0)
    n = 12
    params = {"xy": torch.rand(n, 2, generator=g) * 40, "log_size": torch.log(4 + torch.rand(n, generator=g) * 8),
              "theta": torch.rand(n, generator=g) * 6, "color": torch.rand(n, 3, generator=g),
              "opacity": torch.full((n,), 0.8), "mix": torch.full((n,), 0.5)}
    for tensor in params.values():
        tensor.requires_grad_(True)
    sprites = load_sprites("shapes")
    image = render(Atlas(sprites, 64), **params, sprite=torch.arange(n) % len(sprites), width=40, height=40,
                   color_mode="mix", background=torch.ones(3), sigma=1.0).image
    guidance(image).backward()
    for name, tensor in params.items():
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all(), name
        assert tensor.grad.abs().sum() > 0, f"no gradient reaches {name}"


def test_prompt_alone_lowers_the_clip_loss(tiny_weights):
    guidance = load_clip_guidance("a red fox in the snow", TINY, tiny_weights, views=4)
    start = fit(None, "shapes", n=30, iters=0, guidance=guidance, canvas=(48, 40))
    result = fit(None, "shapes", n=30, iters=40, guidance=guidance, canvas=(48, 40))
    assert (result.width, result.height) == (48, 40)
    assert clip_similarity(result, guidance) > clip_similarity(start, guidance) + 0.01


def test_prompt_with_a_target_image_mixes_both_losses(tiny_weights):
    rng = np.random.default_rng(0)
    target = np.repeat(np.repeat(rng.random((4, 4, 3)), 10, 0), 10, 1).astype(np.float32)
    guidance = load_clip_guidance("a blue square", TINY, tiny_weights, views=2, weight=0.5)
    plain = fit(target, "shapes", n=30, iters=20)
    guided = fit(target, "shapes", n=30, iters=20, guidance=guidance)
    assert not np.array_equal(plain.xy, guided.xy)
    assert clip_similarity(guided, guidance) > clip_similarity(plain, guidance)


def test_augmented_views_are_varied_and_repeatable(tiny_weights):
    model, tokenizer = load_clip(TINY, tiny_weights)
    guidance = ClipGuidance(model, tokenizer, "a fox", views=3)
    image = torch.rand(3, 30, 50)
    views = guidance.augment(image)
    assert views.shape == (3, 3, 32, 32) and 0 <= views.min() and views.max() <= 1
    assert not torch.allclose(views[0], views[1])
    with guidance.fixed_views():
        first = guidance.augment(image)
    with guidance.fixed_views():
        assert torch.equal(first, guidance.augment(image))


def test_command_line_prompt_only(tiny_weights, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["fit", "--prompt", "a fox", "--clip-model", TINY, "--clip-weights", str(tiny_weights),
                 "--clip-views", "2", "--canvas", "40x32", "--sprites", "shapes", "-n", "20", "--iters", "4",
                 "--out", str(out), "--formats", "png,json"]) == 0
    assert "CLIP similarity" in capsys.readouterr().out
    scene = Scene.load(out / "scene.json")
    assert (scene.width, scene.height) == (40, 32) and (out / "result.png").is_file()


def test_missing_weights_say_how_to_get_them(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(SpriteFitError, match="not on this computer. Download them once"):
        load_clip("ViT-B-32", "laion2b_s34b_b79k")
    with pytest.raises(SpriteFitError, match="has no weights 'nonsense'"):
        load_clip("ViT-B-32", "nonsense")
    with pytest.raises(SpriteFitError, match="weights file not found"):
        load_clip(TINY, tmp_path / "missing.pt")
    torch.save({"unrelated": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(SpriteFitError, match="cannot load CLIP"):
        load_clip(TINY, tmp_path / "other.pt")


def test_bad_guidance_input_is_named(tiny_weights, monkeypatch):
    model, tokenizer = load_clip(TINY, tiny_weights)
    with pytest.raises(SpriteFitError, match="prompt is empty"):
        ClipGuidance(model, tokenizer, "  ")
    with pytest.raises(SpriteFitError, match="needs a target image, a text prompt, or both"):
        fit(None, "shapes", n=5, iters=1)
    with pytest.raises(SpriteFitError, match="canvas 3x40 px is outside"):
        fit(None, "shapes", n=5, iters=1, guidance=ClipGuidance(model, tokenizer, "x"), canvas=(3, 40))
    monkeypatch.setitem(sys.modules, "open_clip", None)      # as if it were not installed
    with pytest.raises(SpriteFitError, match="pip install"):
        load_clip(TINY, tiny_weights)


def test_render_scene_runs_on_guided_results(tiny_weights):
    guidance = load_clip_guidance("a fox", TINY, tiny_weights, views=2)
    scene = fit(None, "shapes", n=10, iters=3, guidance=guidance, canvas=(24, 24))
    assert render_scene(scene).image.shape == (3, 24, 24)
