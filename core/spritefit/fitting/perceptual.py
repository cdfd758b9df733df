"""Perceptual loss: distances between VGG-16 features of the render and the target (LPIPS without
its learned linear heads: channel-normalised features, squared differences, averaged per layer).

The weights are never downloaded: they are read from a local file, torchvision's `vgg16` state
dict (keys `features.<index>.weight/bias`), found at $SPRITEFIT_VGG_WEIGHTS or in torch's hub
cache. The network is rebuilt from the file's keys, so a smaller network saved the same way loads
the same way.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import SpriteFitError

TORCHVISION_FILE = "vgg16-397923af.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_weights_path() -> Path:
    if os.environ.get("SPRITEFIT_VGG_WEIGHTS"):
        return Path(os.environ["SPRITEFIT_VGG_WEIGHTS"])
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE


class PerceptualLoss(torch.nn.Module):
    def __init__(self, state_dict: dict):
        super().__init__()
        indices = sorted(int(key.split(".")[1]) for key in state_dict
                         if key.startswith("features.") and key.endswith(".weight"))
        if not indices:
            raise SpriteFitError("the perceptual weights hold no `features.<i>.weight` convolutions")
        self.convs = torch.nn.ModuleList()
        self.pool_after = []   # torchvision's layout: conv, relu (+ max-pool when the next conv is 3 on)
        for position, index in enumerate(indices):
            weight = state_dict[f"features.{index}.weight"]
            conv = torch.nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2], padding=weight.shape[2] // 2)
            conv.load_state_dict({"weight": weight, "bias": state_dict[f"features.{index}.bias"]})
            self.convs.append(conv)
            following = indices[position + 1] if position + 1 < len(indices) else index + 3
            self.pool_after.append(following - index == 3)
        self.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(3, 1, 1))

    @classmethod
    def from_file(cls, path: str | os.PathLike | None = None) -> "PerceptualLoss":
        path = Path(path) if path is not None else default_weights_path()
        if not path.is_file():
            raise SpriteFitError(f"perceptual loss weights not found at {path}: put torchvision's "
                                 f"{TORCHVISION_FILE} there or set SPRITEFIT_VGG_WEIGHTS")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:   # torch raises many types for a damaged file
            raise SpriteFitError(f"cannot read perceptual loss weights {path}: {exc}") from None
        return cls(state)

    def features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Activations before each pooling (relu1_2, relu2_2, ... for VGG-16), channel-normalised."""
        x = ((image - self.mean) / self.std).unsqueeze(0)
        taps = []
        for conv, pool in zip(self.convs, self.pool_after):
            x = F.relu(conv(x))
            if pool:
                taps.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
                x = F.max_pool2d(x, 2, ceil_mode=True)
        return taps

    def forward(self, image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            reference = self.features(target)
        return sum(((a - b) ** 2).sum(1).mean() for a, b in zip(self.features(image), reference))
