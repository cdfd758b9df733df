"""Colours refitted in closed form: in the tint and multiply modes the render is linear in every
instance's colour once the geometry and opacities are fixed,

    C(p) = sum_i w_i(p) c_i + T_end(p) background,     w_i = T_i a_i (x the sprite's colour in multiply)

so the colours that minimise the squared error are a linear least-squares solution. It is found
by conjugate gradients on the normal equations (CGLS), each step one render (A c) and one
backward pass through the renderer (A^T r), so it costs a few iterations' time and needs no
matrix. Gradient descent gets there too, but slowly: a colour far from its answer moves by one
learning rate a step, and sprites under others see only a small share of the gradient.
"""
from __future__ import annotations

import torch

from .placement import FRESH_RANGE

LINEAR_MODES = ("tint", "multiply")


def refit_colors(render_with, target: torch.Tensor, colors: torch.Tensor, background: torch.Tensor,
                 steps: int = 8) -> torch.Tensor:
    """Least-squares colours (N, 3) for the current geometry, starting from `colors`.

    render_with(colors, background) -> (3, H, W) image of the current geometry with these
    colours, differentiable in them."""
    zero = torch.zeros_like(background)

    def forward(c: torch.Tensor) -> torch.Tensor:           # A c
        return render_with(c, zero)

    def adjoint(r: torch.Tensor) -> torch.Tensor:           # A^T r
        c = torch.zeros_like(colors, requires_grad=True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad((render_with(c, zero) * r).sum(), c)
        return grad

    with torch.no_grad():
        constant = render_with(torch.zeros_like(colors), background)     # T_end x background
        x = colors.detach().clone()
        residual = target - constant - forward(x)
        s = adjoint(residual)
        p, gamma = s.clone(), (s * s).sum()
        for _ in range(steps):
            q = forward(p)
            denominator = (q * q).sum()
            if denominator <= 1e-20 or gamma <= 1e-20:
                break
            alpha = gamma / denominator
            x += alpha * p
            residual -= alpha * q
            s = adjoint(residual)
            gamma, previous = (s * s).sum(), gamma
            p = s + (gamma / previous) * p
        return x.clamp(*FRESH_RANGE)
