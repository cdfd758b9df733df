"""Adam (Kingma & Ba 2015) over parameter groups: the same update, state and group layout as
torch.optim.Adam with its defaults, so respawns and video warm starts can reset and carry the
moments (state[p]: "step", "exp_avg", "exp_avg_sq").

Written here rather than imported because torch.optim's first use imports torch._dynamo, about
0.7 s of every command's start-up; a fit needs none of it. tests/test_fit.py checks the steps
against torch.optim.Adam's.

On the CPU the step is one call of the native module for all the parameters, with the operations
of the multi-tensor torch path below in the same order: that path is seven operations over six
small tensors a step, each with its own dispatch overhead. The two differ only where torch's
vectorised square root is not correctly rounded (the last bit of some values); both are checked
against torch.optim.Adam."""
from __future__ import annotations

import math

import torch

from ..native_module import _native


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
        """One step of every parameter with a gradient, all of them in each of a few multi-tensor
        (torch._foreach) operations: a fit's six small parameters otherwise cost some fifty
        separate operations a step, each with its own overhead."""
        beta1, beta2 = self.betas
        params, grads, exp_avgs, exp_avg_sqs, step_sizes, bias_roots = [], [], [], [], [], []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.get(p)
                if not state:
                    state = self.state[p] = {"step": 0, "exp_avg": torch.zeros_like(p),
                                             "exp_avg_sq": torch.zeros_like(p)}
                state["step"] += 1
                params.append(p)
                grads.append(p.grad)
                exp_avgs.append(state["exp_avg"])
                exp_avg_sqs.append(state["exp_avg_sq"])
                step_sizes.append(-group["lr"] / (1 - beta1 ** state["step"]))
                bias_roots.append(math.sqrt(1 - beta2 ** state["step"]))
        if not params:
            return
        if _native_step_applies(params, exp_avgs, exp_avg_sqs):
            grads = [g.contiguous() for g in grads]   # kept alive through the call
            _native.adam_step_cpu([(p.data_ptr(), g.data_ptr(), m.data_ptr(), v.data_ptr(), p.numel(), s, b)
                                   for p, g, m, v, s, b in zip(params, grads, exp_avgs, exp_avg_sqs, step_sizes,
                                                                bias_roots)], 1 - beta1, beta2, 1 - beta2, self.eps)
            return
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
        denoms = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denoms, bias_roots)
        torch._foreach_add_(denoms, self.eps)
        torch._foreach_addcdiv_(params, exp_avgs, denoms, step_sizes)


def _native_step_applies(params, exp_avgs, exp_avg_sqs) -> bool:
    """Whether the native step can update these tensors in place: float32 and contiguous on the CPU."""
    return (_native is not None and hasattr(_native, "adam_step_cpu")
            and all(t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous()
                    for t in (*params, *exp_avgs, *exp_avg_sqs)))
