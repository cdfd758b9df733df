"""Image losses against direct formulas, and the perceptual loss with a tiny network."""
import pytest
import torch
import torch.nn.functional as F

from spritefit.errors import SpriteFitError
from spritefit.fitting.losses import (TRAINING_SSIM_RADIUS, LossWeights, gradient_loss, image_loss, ms_ssim, mse,
                                      psnr, ssim)
from spritefit.fitting.perceptual import PerceptualLoss
from spritefit.sprites import gaussian_kernel, gaussian_radius


def dense_window_ssim(x, y, sigma=1.5, radius=None):
    """SSIM with a dense 2-D Gaussian window per statistic, as Wang et al. write it (cut at
    `radius` taps a side when given)."""
    kernel = gaussian_kernel(sigma, radius=radius)
    window = (kernel[:, None] * kernel[None, :]).expand(3, 1, -1, -1)
    mean = lambda t: F.conv2d(t[None], window.to(t.dtype), padding=kernel.numel() // 2, groups=3)[0]
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


@pytest.mark.parametrize("shape", [(3, 40, 33), (3, 7, 5), (1, 64, 96), (3, 300, 21), (1, 129, 6)])
def test_native_ssim_value_and_gradient_match_the_formula(shape):
    """The native kernel (value and gradient in one call) against autograd through the dense
    window formula in float64; sizes smaller than the window included, and heights over the
    kernel's blocks of 128 rows (their halos)."""
    from spritefit.fitting.losses import _native_ssim_applies
    g = torch.Generator().manual_seed(1)
    target = torch.rand(*shape, generator=g)
    image = (target + 0.3 * torch.randn(*shape, generator=g)).clamp(0, 1).requires_grad_(True)
    assert _native_ssim_applies(image, target, gaussian_radius(1.5))
    value = ssim(image, target)
    value.backward(torch.tensor(2.0))
    reference_image = image.detach().double().requires_grad_(True)
    dense = dense_window_ssim if shape[0] == 3 else (lambda x, y: dense_window_ssim(x.expand(3, -1, -1), y.expand(3, -1, -1)))
    reference = dense(reference_image, target.double())
    (2 * reference).backward()
    assert abs(float(value) - float(reference)) < 1e-5
    expected = reference_image.grad.float()
    assert float((image.grad - expected).abs().max()) <= 1e-4 * float(expected.abs().max())


@pytest.mark.parametrize("shape", [(3, 150, 37), (1, 7, 5), (3, 300, 64)])
def test_ssim_against_a_target_seen_again_uses_its_kept_statistics_and_gives_the_same_numbers(shape, monkeypatch):
    """From the second call with the same target the native SSIM reads the target's statistics
    made once; value and gradient equal those of the full pass, and a target changed in place,
    or another one, is not taken for the kept one."""
    from spritefit.fitting import losses
    made = []
    statistics = losses._native.ssim_target_statistics_cpu
    monkeypatch.setattr(losses._native, "ssim_target_statistics_cpu", lambda *a: (made.append(1), statistics(*a)))
    monkeypatch.setattr(losses, "_target_statistics", losses._TargetStatistics())
    g = torch.Generator().manual_seed(5)
    target = torch.rand(*shape, generator=g)
    image = (target + 0.3 * torch.randn(*shape, generator=g)).clamp(0, 1)

    def loss_and_gradient(target):
        x = image.clone().requires_grad_(True)
        value = image_loss(x, target, LossWeights(l2=1.0, ssim=0.4))
        value.backward()
        return float(value), x.grad

    first, again = loss_and_gradient(target), loss_and_gradient(target)
    assert len(made) == 1 and losses._target_statistics.of(target, 1.5, TRAINING_SSIM_RADIUS) is not None
    assert again[0] == pytest.approx(first[0], rel=1e-6, abs=1e-7)
    assert float((again[1] - first[1]).abs().max()) <= 1e-6 * float(first[1].abs().max())
    target[0] += 0.1       # in place: the kept statistics are no longer the target's
    changed = loss_and_gradient(target)
    assert len(made) == 1 and abs(changed[0] - first[0]) > 1e-4
    assert loss_and_gradient(target)[0] == pytest.approx(changed[0], rel=1e-6, abs=1e-7) and len(made) == 2
    assert loss_and_gradient(target.clone())[0] == pytest.approx(changed[0], rel=1e-6, abs=1e-7) and len(made) == 2
    kept = losses._target_statistics
    loss_and_gradient(target), loss_and_gradient(target)
    assert kept._last[5] is not None and len(made) == 3
    del target
    assert kept._last is None       # the statistics do not outlive their target


def test_ssim_and_psnr_fall_as_noise_grows():
    g = torch.Generator().manual_seed(1)
    target = torch.rand(3, 32, 32, generator=g)
    noise = torch.randn(3, 32, 32, generator=g)
    scores = [(float(ssim((target + s * noise).clamp(0, 1), target)), psnr((target + s * noise).clamp(0, 1), target))
              for s in (0.02, 0.1, 0.3)]
    assert scores[0][0] > scores[1][0] > scores[2][0]
    assert scores[0][1] > scores[1][1] > scores[2][1]


def test_ms_ssim_and_gradient_loss():
    g = torch.Generator().manual_seed(2)
    target = torch.rand(3, 64, 48, generator=g)
    noisy = (target + 0.2 * torch.randn(3, 64, 48, generator=g)).clamp(0, 1)
    assert abs(float(ms_ssim(target, target)) - 1) < 1e-5
    slightly = (target + 0.05 * torch.randn(3, 64, 48, generator=g)).clamp(0, 1)
    assert float(ms_ssim(noisy, target)) < float(ms_ssim(slightly, target)) < 1
    assert float(gradient_loss(target, target)) == 0 and float(gradient_loss(noisy, target)) > 0.05
    flat = torch.full_like(target, 0.5)
    assert float(gradient_loss(flat + 0.1, flat)) == 0   # a uniform shift has the same edges


def test_image_loss_adds_weighted_terms():
    g = torch.Generator().manual_seed(3)
    target = torch.rand(3, 32, 32, generator=g)
    image = torch.rand(3, 32, 32, generator=g)
    weights = LossWeights(l2=1.0, l1=0.5, ssim=0.2, ms_ssim=0.0, gradient=0.3)
    expected = (mse(image, target) + 0.5 * (image - target).abs().mean()
                + 0.2 * (1 - ssim(image, target, radius=TRAINING_SSIM_RADIUS))
                + 0.3 * gradient_loss(image, target))
    assert torch.allclose(image_loss(image, target, weights), expected)
    with pytest.raises(ValueError, match="PerceptualLoss"):
        image_loss(image, target, LossWeights(perceptual=1.0))


def tiny_vgg_file(path):
    """A small randomly initialised network saved with torchvision's vgg16 key layout
    (conv, relu, conv, relu, pool, conv, relu, pool)."""
    torch.manual_seed(0)
    layers = {0: (3, 4), 2: (4, 4), 5: (4, 8)}
    state = {}
    for index, (c_in, c_out) in layers.items():
        state[f"features.{index}.weight"] = torch.randn(c_out, c_in, 3, 3) * 0.3
        state[f"features.{index}.bias"] = torch.zeros(c_out)
    state["classifier.0.weight"] = torch.zeros(1)   # other keys are ignored
    torch.save(state, path)
    return path


@pytest.mark.parametrize("l2, w", [(1.0, 0.05), (0.0, 0.3), (2.5, 0.0)])
def test_default_loss_in_one_native_pass_matches_its_terms(l2, w):
    """L2 and SSIM alone (the default loss) go through one native call; its value and gradient
    are those of the two terms, L2 by torch and SSIM by the dense window formula in float64."""
    g = torch.Generator().manual_seed(4)
    target = torch.rand(3, 150, 37, generator=g)
    image = (target + 0.3 * torch.randn(3, 150, 37, generator=g)).clamp(0, 1).requires_grad_(True)
    fused = image_loss(image, target, LossWeights(l2=l2, ssim=w))
    fused.backward()
    reference_image = image.detach().double().requires_grad_(True)
    reference = (l2 * ((reference_image - target.double()) ** 2).mean()
                 + w * (1 - dense_window_ssim(reference_image, target.double(), radius=TRAINING_SSIM_RADIUS)))
    reference.backward()
    assert abs(float(fused) - float(reference)) < 1e-5
    expected = reference_image.grad.float()
    assert float((image.grad - expected).abs().max()) <= 1e-4 * float(expected.abs().max())


def test_perceptual_loss_loads_weights_from_a_file(tmp_path):
    loss = PerceptualLoss.from_file(tiny_vgg_file(tmp_path / "vgg.pth"))
    assert len(loss.convs) == 3 and loss.pool_after == [False, True, True]
    g = torch.Generator().manual_seed(4)
    target = torch.rand(3, 32, 32, generator=g)
    image = torch.rand(3, 32, 32, generator=g, requires_grad=True)
    assert float(loss(target, target)) < 1e-10
    value = loss(image, target)
    value.backward()
    assert value.item() > 0 and image.grad.abs().sum() > 0
    combined = image_loss(image, target, LossWeights(l2=0, ssim=0, perceptual=1.0), loss)
    assert torch.allclose(combined, value)


def test_missing_or_damaged_perceptual_weights_are_clear_errors(tmp_path):
    with pytest.raises(SpriteFitError, match="weights not found"):
        PerceptualLoss.from_file(tmp_path / "nothing.pth")
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(SpriteFitError, match="cannot read perceptual loss weights"):
        PerceptualLoss.from_file(tmp_path / "bad.pth")


def test_the_training_ssim_has_the_cut_window_on_both_paths_and_the_metric_the_full_one(monkeypatch):
    """The loss's SSIM term uses the window cut at TRAINING_SSIM_RADIUS taps a side, by the
    native kernel and by the torch formula alike; ssim() as a metric keeps the standard window."""
    from spritefit.fitting import losses
    g = torch.Generator().manual_seed(6)
    target = torch.rand(3, 60, 45, generator=g)
    image = (target + 0.3 * torch.randn(3, 60, 45, generator=g)).clamp(0, 1)
    cut = 1 - float(dense_window_ssim(image.double(), target.double(), radius=TRAINING_SSIM_RADIUS))
    full = 1 - float(dense_window_ssim(image.double(), target.double()))
    assert TRAINING_SSIM_RADIUS < gaussian_radius(1.5) and abs(cut - full) > 1e-4   # the tolerance below, x 10
    weights = LossWeights(l2=0.0, ssim=1.0)
    assert abs(float(image_loss(image, target, weights)) - cut) < 1e-5
    assert abs(1 - float(ssim(image, target)) - full) < 1e-5
    monkeypatch.setattr(losses, "_native_ssim_applies", lambda *args: False)     # the torch formula (a GPU's)
    assert abs(float(image_loss(image, target, weights)) - cut) < 1e-5
    assert abs(1 - float(ssim(image, target)) - full) < 1e-5
