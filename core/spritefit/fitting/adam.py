"""Adam (Kingma & Ba 2015) over parameter groups: the same update, state and group layout as
torch.optim.Adam with its defaults, so respawns and video warm starts can reset and carry the
moments (state[p]: "step", "exp_avg", "exp_avg_sq").

Written here rather than imported because torch.optim's first use imports torch._dynamo, about
0.7 s of every command's start-up; a fit needs none of it. tests/test_fit.py checks the steps
against torch.optim.Adam's."""
from __future__ import annotations

import math

import torch


class Adam:
    def __init__(self, groups: list[dict], betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.param_groups = [dict(group, params=list(group["params"])) for group in groups]
        self.betas, self.eps = betas, eps
        self.state: dict[torch.Tensor, dict] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.get(p)
                if not state:
                    state = self.state[p] = {"step": 0, "exp_avg": torch.zeros_like(p),
                                             "exp_avg_sq": torch.zeros_like(p)}
                state["step"] += 1
                exp_avg, exp_avg_sq, step = state["exp_avg"], state["exp_avg_sq"], state["step"]
                exp_avg.lerp_(p.grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                step_size = group["lr"] / (1 - beta1 ** step)
                denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2 ** step)).add_(self.eps)
                p.addcdiv_(exp_avg, denom, value=-step_size)
