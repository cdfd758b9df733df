"""Image losses against direct formulas."""
import torch
import torch.nn.functional as F

from spritefit.fit.losses import psnr, ssim
from spritefit.sprites import gaussian_kernel


def dense_window_ssim(x, y, sigma=1.5):
    """SSIM with a dense 2-D Gaussian window per statistic, as Wang et al. write it."""
    kernel = gaussian_kernel(sigma)
    window = (kernel[:, None] * kernel[None, :]).expand(3, 1, -1, -1)
    mean = lambda t: F.conv2d(t[None], window, padding=kernel.numel() // 2, groups=3)[0]
    mu_x, mu_y = mean(x), mean(y)
    var_x, var_y, cov = mean(x * x) - mu_x ** 2, mean(y * y) - mu_y ** 2, mean(x * y) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    return (((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))).mean()


def test_ssim_matches_the_dense_window_formula():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(3, 40, 33, generator=g)
    image = (target + 0.2 * torch.randn(3, 40, 33, generator=g)).clamp(0, 1)
    assert abs(float(ssim(image, target)) - float(dense_window_ssim(image, target))) < 1e-5
    assert abs(float(ssim(target, target)) - 1.0) < 1e-5


def test_ssim_and_psnr_fall_as_noise_grows():
    g = torch.Generator().manual_seed(1)
    target = torch.rand(3, 32, 32, generator=g)
    noise = torch.randn(3, 32, 32, generator=g)
    scores = [(float(ssim((target + s * noise).clamp(0, 1), target)), psnr((target + s * noise).clamp(0, 1), target))
              for s in (0.02, 0.1, 0.3)]
    assert scores[0][0] > scores[1][0] > scores[2][0]
    assert scores[0][1] > scores[1][1] > scores[2][1]
