"""Image losses and quality metrics on (3, H, W) tensors in [0, 1]."""
from __future__ import annotations

import math
import weakref

import torch
import torch.nn.functional as F

from ..native_module import _native
from ..options import LossWeights
from ..sprites import gaussian_blur, gaussian_kernel, gaussian_radius


SSIM_SIGMA = 1.5   # the Gaussian window of Wang et al. 2004
# The training loss's SSIM term cuts that window at 4 taps a side (2.7 sigma: the tails left out
# held 0.4 % of its weight) where the metric keeps 5: the native SSIM with its gradient in 0.83x
# the time (1.65 -> 1.36 ms at 3 x 341 x 512), and over six seeds of `bench versus` every mean of
# both sets within 0.05 dB and 0.002 SSIM of the full window's (docs/speed.md). At 3 taps a side
# the fits lost up to 0.06 dB.
TRAINING_SSIM_RADIUS = 4


def mse(image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # One fused pass with one temporary (torch.mean((image - target) ** 2) makes two): half the
    # time of the training PSNR that progress reads, 17 instead of 33 ms at 3 x 2048 x 2048.
    return F.mse_loss(image, target)


def psnr(image: torch.Tensor, target: torch.Tensor) -> float:
    error = float(mse(image.detach(), target))
    return 10 * math.log10(1.0 / max(error, 1e-12))


def _ssim_terms(image: torch.Tensor, target: torch.Tensor, sigma: float = SSIM_SIGMA, radius: int | None = None):
    """Per-pixel luminance and contrast-structure terms of SSIM (Wang et al. 2004), with
    gaussian_kernel(sigma, radius=radius) as the window.

    All five local statistics go through one separable blur: on a CPU this is ~10x faster than
    five dense 2-D window convolutions, and SSIM runs every iteration."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    x, y = image, target
    stats = gaussian_blur(torch.cat([x, y, x * x, y * y, x * y]).unsqueeze(0), sigma, radius)[0]
    mu_x, mu_y, xx, yy, xy = stats.split(image.shape[0])
    var_x, var_y, cov = xx - mu_x ** 2, yy - mu_y ** 2, xy - mu_x * mu_y
    luminance = (2 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1)
    contrast_structure = (2 * cov + c2) / (var_x + var_y + c2)
    return luminance, contrast_structure


class _NativeSsimMse(torch.autograd.Function):
    """l2_weight * MSE + ssim_weight * mean SSIM by the native kernel, which computes the gradient
    in the same call (a loss always needs it): about 10x less time than the torch formulas and
    their autograd on a CPU, and the image loss's two usual terms in one pass over the pixels."""

    @staticmethod
    def forward(ctx, image, target, target_stats, kernel, l2_weight, ssim_weight):
        image, target = image.detach().contiguous(), target.detach().contiguous()
        grad = torch.empty_like(image) if ctx.needs_input_grad[0] else None
        ssim_value, mse_value = _native.ssim_cpu(image.data_ptr(), target.data_ptr(),
                                                 0 if target_stats is None else target_stats.data_ptr(),
                                                 *image.shape, kernel.data_ptr(), kernel.numel() // 2, l2_weight,
                                                 ssim_weight, 0 if grad is None else grad.data_ptr())
        ctx.grad = grad
        return torch.tensor(l2_weight * mse_value + ssim_weight * ssim_value, dtype=image.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        # The image loss is usually the whole loss (grad_output 1): the gradient as made, without
        # a pass over the image to multiply it by 1 (the kernel runs on the CPU: no device sync).
        grad = ctx.grad if float(grad_output) == 1.0 else grad_output * ctx.grad
        return grad, None, None, None, None, None


class _TargetStatistics:
    """The target's windowed mean and mean square for the native SSIM, made for the last target
    seen twice: a fit compares every render with the same target, and SSIM then blurs only the
    image's planes (three of its five statistics). A target seen once (a masked fit's, which
    takes the render where the mask is 0) costs nothing extra."""

    def __init__(self):
        self._last = None   # (weak reference, version, data pointer, sigma, radius, statistics or None)

    def of(self, target: torch.Tensor, sigma: float, radius: int) -> torch.Tensor | None:
        """The statistics with the window gaussian_kernel(sigma, radius=radius)."""
        last = self._last   # one read: another thread may replace it, never change it
        key = (target._version, target.data_ptr(), sigma, radius)
        if last is None or last[0]() is not target or last[1:5] != key:
            self._last = (weakref.ref(target, self._forget), *key, None)
            return None
        if last[5] is None:
            planes = target.detach().contiguous()
            kernel = gaussian_kernel(sigma, radius=radius)
            stats = torch.empty(planes.shape[0], 2, *planes.shape[1:])
            _native.ssim_target_statistics_cpu(planes.data_ptr(), *planes.shape, kernel.data_ptr(), radius,
                                               stats.data_ptr())
            self._last = last = (*last[:5], stats)
        return last[5]

    def _forget(self, dead: weakref.ref) -> None:
        """The target is gone: so are its statistics (a large canvas's are tens of megabytes)."""
        last = self._last
        if last is not None and last[0] is dead:
            self._last = None


_target_statistics = _TargetStatistics()


def _native_ssim_mse(image: torch.Tensor, target: torch.Tensor, sigma: float, radius: int, l2_weight: float,
                     ssim_weight: float) -> torch.Tensor:
    return _NativeSsimMse.apply(image, target, _target_statistics.of(target, sigma, radius),
                                gaussian_kernel(sigma, radius=radius), l2_weight, ssim_weight)


def _native_ssim_applies(image: torch.Tensor, target: torch.Tensor, radius: int) -> bool:
    return (_native is not None and hasattr(_native, "ssim_cpu") and image.device.type == "cpu"
            and radius <= _native.SSIM_MAX_RADIUS
            and image.dtype == target.dtype == torch.float32 and image.dim() == 3 and image.shape == target.shape
            and not target.requires_grad)


def ssim(image: torch.Tensor, target: torch.Tensor, sigma: float = SSIM_SIGMA,
         radius: int | None = None) -> torch.Tensor:
    """Mean structural similarity with a Gaussian window of `radius` taps a side (the standard
    window, gaussian_radius(sigma), unless given), by the native kernel on the CPU and the torch
    formula elsewhere: the same numbers."""
    radius = gaussian_radius(sigma) if radius is None else radius
    if _native_ssim_applies(image, target, radius):
        return _native_ssim_mse(image, target, sigma, radius, 0.0, 1.0)
    luminance, contrast_structure = _ssim_terms(image, target, sigma, radius)
    return (luminance * contrast_structure).mean()


MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)   # Wang, Simoncelli, Bovik 2003


def ms_ssim(image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Multi-scale SSIM: contrast-structure at every scale, luminance at the coarsest; as many of
    the five scales as the image is large enough for (weights renormalised)."""
    scales = max(1, min(len(MS_SSIM_WEIGHTS), int(math.log2(min(image.shape[1:]) / 8)) + 1))
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], device=image.device)
    weights = weights / weights.sum()
    score = torch.ones((), device=image.device)
    for level in range(scales):
        luminance, contrast_structure = _ssim_terms(image, target)
        value = contrast_structure.mean() if level < scales - 1 else (luminance * contrast_structure).mean()
        score = score * value.clamp_min(1e-6) ** weights[level]
        image, target = F.avg_pool2d(image[None], 2)[0], F.avg_pool2d(target[None], 2)[0]
    return score


def image_gradients(image: torch.Tensor):
    return image[:, :, 1:] - image[:, :, :-1], image[:, 1:, :] - image[:, :-1, :]


def gradient_loss(image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between the images' finite differences: edges in the right place, with the right contrast."""
    (ix, iy), (tx, ty) = image_gradients(image), image_gradients(target)
    return (ix - tx).abs().mean() + (iy - ty).abs().mean()


def _only_l2_and_ssim(weights: LossWeights) -> bool:
    return weights.l1 == weights.ms_ssim == weights.gradient == weights.perceptual == 0


def image_loss(image: torch.Tensor, target: torch.Tensor, weights: LossWeights | float = LossWeights(),
               perceptual=None) -> torch.Tensor:
    """Weighted sum of the loss terms (SSIM's with the training window, TRAINING_SSIM_RADIUS). A
    bare number is the SSIM weight next to L2."""
    if not isinstance(weights, LossWeights):
        weights = LossWeights(ssim=float(weights))
    if _only_l2_and_ssim(weights) and _native_ssim_applies(image, target, TRAINING_SSIM_RADIUS):
        # the default loss, in one native pass: l2 MSE + w (1 - SSIM) = w + (l2 MSE - w SSIM)
        return weights.ssim + _native_ssim_mse(image, target, SSIM_SIGMA, TRAINING_SSIM_RADIUS, weights.l2,
                                               -weights.ssim)
    terms = {"l2": lambda: mse(image, target), "l1": lambda: (image - target).abs().mean(),
             "ssim": lambda: 1 - ssim(image, target, radius=TRAINING_SSIM_RADIUS),
             "ms_ssim": lambda: 1 - ms_ssim(image, target),
             "gradient": lambda: gradient_loss(image, target), "perceptual": lambda: perceptual(image, target)}
    loss = torch.zeros((), device=image.device)
    for name, term in terms.items():
        weight = getattr(weights, name)
        if weight > 0:
            if name == "perceptual" and perceptual is None:
                raise ValueError("a perceptual loss weight needs a PerceptualLoss network")
            loss = loss + weight * term()
    return loss
