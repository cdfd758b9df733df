"""CLIP text guidance (as in CLIPDraw and DiffBMP): the loss is one minus the mean cosine
similarity between CLIP's embedding of the prompt and its embeddings of several augmented views
of the render (random crops, perspective, colour jitter). The augmentations keep the fit from
satisfying CLIP with adversarial pixel patterns instead of shapes that read as the prompt.

Models and weights come from open_clip. Weights are never downloaded here: a file path, or a
tag whose file is already in the usual cache (Hugging Face's, or open_clip's ~/.cache/clip).
"""
from __future__ import annotations

import math
import os
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import SpriteFitError

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_WEIGHTS = "laion2b_s34b_b79k"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)     # OpenAI CLIP's normalisation
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
INSTALL_HINT = "pip install 'open_clip_torch' (with a torchvision that matches your torch)"


def _open_clip():
    try:
        import open_clip
    except ImportError as exc:
        raise SpriteFitError(f"CLIP guidance needs open_clip, which cannot be imported ({exc}): {INSTALL_HINT}") from None
    return open_clip


def _cached_weights(open_clip, model: str, tag: str) -> str:
    """The local file of open_clip's pretrained weights `tag` for `model`, from the cache only."""
    config = open_clip.get_pretrained_cfg(model, tag)
    if not config:
        known = ", ".join(open_clip.list_pretrained_tags_by_model(model)) or "none"
        raise SpriteFitError(f"open_clip has no weights {tag!r} for model {model!r} (it knows: {known}); "
                             f"or give a weights file")
    hub = config.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache
        repo, filename = os.path.split(hub)
        filename = filename or "open_clip_pytorch_model.bin"
        for name in (filename.rsplit(".", 1)[0] + ".safetensors", filename):
            path = try_to_load_from_cache(repo, name)
            if isinstance(path, str):
                return path
    url = config.get("url", "")
    if url:
        path = Path("~/.cache/clip").expanduser() / os.path.basename(url)
        if path.is_file():
            return str(path)
    fetch = f"python -c \"import open_clip; open_clip.create_model_and_transforms('{model}', pretrained='{tag}')\""
    raise SpriteFitError(f"the CLIP weights {model}/{tag} are not on this computer. Download them once "
                         f"(about 600 MB) with: {fetch} -- or pass a weights file with --clip-weights "
                         f"(or SPRITEFIT_CLIP_WEIGHTS)")


def load_clip(model: str = DEFAULT_MODEL, weights: str | os.PathLike | None = None, device="cpu"):
    """(model, tokenizer) from open_clip. `weights`: a checkpoint file, or a pretrained tag found
    in the cache (default $SPRITEFIT_CLIP_WEIGHTS, else DEFAULT_WEIGHTS)."""
    open_clip = _open_clip()
    weights = weights or os.environ.get("SPRITEFIT_CLIP_WEIGHTS") or DEFAULT_WEIGHTS
    looks_like_file = isinstance(weights, os.PathLike) or os.sep in str(weights) or Path(weights).suffix
    if looks_like_file:
        if not Path(weights).is_file():
            raise SpriteFitError(f"CLIP weights file not found: {weights}")
        path = str(weights)
    else:
        path = _cached_weights(open_clip, model, str(weights))
    try:
        clip = open_clip.create_model(model, pretrained=path, device=device)
        tokenizer = open_clip.get_tokenizer(model)
    except RuntimeError as exc:       # the file does not hold this model's weights
        raise SpriteFitError(f"cannot load CLIP {model} from {path}: {str(exc).splitlines()[0]}") from None
    return clip, tokenizer


def load_clip_guidance(prompt: str, model: str = DEFAULT_MODEL, weights=None, device="cpu", **options) -> "ClipGuidance":
    clip, tokenizer = load_clip(model, weights, device)
    return ClipGuidance(clip, tokenizer, prompt, **options).to(device)


class ClipGuidance(torch.nn.Module):
    """loss(image) = 1 - mean cosine similarity of `views` augmented views of the (3, H, W)
    image with the prompt. `weight` scales it in a fit's loss (beside the image loss)."""

    def __init__(self, model, tokenizer, prompt: str, views: int = 8, weight: float = 1.0,
                 crop_scale: tuple[float, float] = (0.7, 1.0), distortion: float = 0.3, jitter: float = 0.1,
                 seed: int = 0):
        super().__init__()
        if not prompt or not prompt.strip():
            raise SpriteFitError("the CLIP prompt is empty")
        if views < 1:
            raise SpriteFitError(f"CLIP guidance needs at least one view, not {views}")
        self.model = model.eval().requires_grad_(False)
        self.prompt, self.views, self.weight = prompt, views, weight
        self.crop_scale, self.distortion, self.jitter = crop_scale, distortion, jitter
        size = getattr(model.visual, "image_size", 224)
        self.input_size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        mean = getattr(model.visual, "image_mean", None) or CLIP_MEAN
        std = getattr(model.visual, "image_std", None) or CLIP_STD
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        device = next(model.parameters()).device
        with torch.no_grad():
            text = model.encode_text(tokenizer([prompt]).to(device)).float()
        self.register_buffer("text", F.normalize(text, dim=-1))
        self.seed = seed
        self.generator = torch.Generator(device="cpu").manual_seed(seed)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        views = self.augment(image)
        features = F.normalize(self.model.encode_image((views - self.mean) / self.std).float(), dim=-1)
        return 1 - (features @ self.text.t()).mean()

    @contextmanager
    def fixed_views(self):
        """The same views on every call inside (comparable losses, e.g. for checkpoints)."""
        saved = self.generator
        self.generator = torch.Generator(device="cpu").manual_seed(self.seed + 1)
        try:
            yield
        finally:
            self.generator = saved

    # -- augmentations --------------------------------------------------------------------------

    def _uniform(self, *shape, low=0.0, high=1.0) -> torch.Tensor:
        return low + (high - low) * torch.rand(*shape, generator=self.generator)

    def augment(self, image: torch.Tensor) -> torch.Tensor:
        """(views, 3, h, w) at the model's input size: a random crop of each view, seen in a random
        perspective, with random brightness, contrast and saturation; all differentiable."""
        grid = self._sampling_grid(image.shape[1] / image.shape[2]).to(image.device)
        views = F.grid_sample(image.unsqueeze(0).expand(self.views, -1, -1, -1), grid, mode="bilinear",
                              padding_mode="reflection", align_corners=False)
        return self._colour_jitter(views).clamp(0, 1)

    def _sampling_grid(self, aspect: float) -> torch.Tensor:
        """(views, h, w, 2) where each output pixel samples the image, in grid_sample units."""
        v, (h, w) = self.views, self.input_size
        scale = self._uniform(v, low=math.sqrt(self.crop_scale[0]), high=math.sqrt(self.crop_scale[1]))
        # a square crop of the image's shorter side, scaled, at a random place inside the image
        half = torch.stack([scale * min(1.0, aspect), scale * min(1.0, 1 / aspect)], 1)       # (v, 2)
        centre = (self._uniform(v, 2) * 2 - 1) * (1 - half)
        corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
        moved = corners + self._uniform(v, 4, 2, low=-self.distortion, high=self.distortion) / 2
        to_image = _homography(corners.expand(v, 4, 2), moved)                              # (v, 3, 3)
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        points = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(1, -1, 3)           # (1, hw, 3)
        mapped = points @ to_image.transpose(1, 2)
        mapped = mapped[..., :2] / mapped[..., 2:].clamp_min(1e-6)
        return (mapped * half[:, None] + centre[:, None]).reshape(v, h, w, 2)

    def _colour_jitter(self, views: torch.Tensor) -> torch.Tensor:
        v, j = views.shape[0], self.jitter
        brightness = self._uniform(v, 1, 1, 1, low=1 - j, high=1 + j).to(views.device)
        contrast = self._uniform(v, 1, 1, 1, low=1 - j, high=1 + j).to(views.device)
        saturation = self._uniform(v, 1, 1, 1, low=1 - j, high=1 + j).to(views.device)
        views = views * brightness
        mean = views.mean((1, 2, 3), keepdim=True)
        views = (views - mean) * contrast + mean
        gray = views.mean(1, keepdim=True)
        return (views - gray) * saturation + gray


def clip_similarity(scene, guidance: ClipGuidance) -> float:
    """Mean cosine similarity between the prompt and views of the scene's render (fixed views)."""
    from ..render import render_scene
    device = guidance.text.device
    image = render_scene(scene, device=device).image
    with torch.no_grad(), guidance.fixed_views():
        return 1 - float(guidance(image))


def _homography(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) projective maps taking the 4 `source` points (B, 4, 2) to the `target` points."""
    rows = []
    for k in range(4):
        x, y = source[:, k, 0], source[:, k, 1]
        u, v = target[:, k, 0], target[:, k, 1]
        one, zero = torch.ones_like(x), torch.zeros_like(x)
        rows.append(torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], 1))
        rows.append(torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], 1))
    solution = torch.linalg.solve(torch.stack(rows, 1), target.reshape(-1, 8))
    return torch.cat([solution, torch.ones_like(solution[:, :1])], 1).reshape(-1, 3, 3)
