"""Image losses and quality metrics on (3, H, W) tensors in [0, 1]."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..sprites import gaussian_kernel


def mse(image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.mean((image - target) ** 2)


def psnr(image: torch.Tensor, target: torch.Tensor) -> float:
    error = float(mse(image.detach(), target))
    return 10 * math.log10(1.0 / max(error, 1e-12))


def ssim(image: torch.Tensor, target: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """Mean structural similarity with a Gaussian window (Wang et al. 2004)."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    kernel = gaussian_kernel(sigma, image.device)
    radius = kernel.numel() // 2
    window = (kernel[:, None] * kernel[None, :]).expand(3, 1, -1, -1).contiguous()

    def local_mean(x):
        return F.conv2d(x, window, padding=radius, groups=3)

    x, y = image.unsqueeze(0), target.unsqueeze(0)
    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x ** 2
    var_y = local_mean(y * y) - mu_y ** 2
    cov = local_mean(x * y) - mu_x * mu_y
    score = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return score.mean()


def image_loss(image: torch.Tensor, target: torch.Tensor, ssim_weight: float) -> torch.Tensor:
    """L2 plus a weighted SSIM dissimilarity: L2 fits colour, SSIM keeps edges and texture."""
    loss = mse(image, target)
    if ssim_weight > 0:
        loss = loss + ssim_weight * (1 - ssim(image, target))
    return loss
