"""PyTorch forums Q&A "Grouped Convolution for Repeated Convolution Backprop" (Syzygianinfern0, 2021-08-18).

Run: python bench/published/forum_shared_kernel.py [--json]

The question's example as published (README.md quotes it): ``torch.manual_seed(0)``, ``x = torch.rand(1, 3, 3,
3)``, ``kernel = nn.Conv2d(1, 1, 3)`` (with its bias), ``conv = nn.Conv2d(3, 3, 3, groups=3)`` given
``kernel.weight.data.repeat(3, 1, 1, 1)`` and ``kernel.bias.data.repeat(3)``; the question prints ``conv(x)``
(-1.0085, -1.0068, -1.0451 in the post) and ``kernel(first), kernel(second), kernel(third)``. The self-answer:
the gradients add up (``kernel.weight.grad = conv.weight.grad.sum(0, keepdim=True)``), averaging the weights is not
right. The answer's ``SharedKernelConv2d`` could not be retrieved (README.md); it is RECONSTRUCTED from the issue's
description: one (1, 1, 3, 3) weight and a bias applied to every channel via ``weight.expand(C, -1, -1, -1)``,
``groups=C``, then ``.mean().backward()``.

Printed: the question's forward numbers, grouped vs per-channel (bitwise), the shared kernel's gradient vs the
summed repeated gradients (bitwise and max |Δ|), and, one SGD (lr 0.1) and one Adam (lr 0.1) step, the distance
of "average the repeated weights after the step" from the shared kernel's step.
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn as nn
import torch.nn.functional as F


class SharedKernelConv2d(nn.Module):
    """Reconstructed: one kernel (and bias) shared by every input channel, through a grouped conv."""

    def __init__(self, channels: int, kernel: nn.Conv2d):
        super().__init__()
        self.channels = channels
        self.weight = nn.Parameter(kernel.weight.detach().clone())
        self.bias = nn.Parameter(kernel.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight.expand(self.channels, -1, -1, -1), self.bias.expand(self.channels),
                        groups=self.channels)


def question() -> dict:
    # --- as published -----------------------------------------------------------------------------------------
    torch.manual_seed(0)
    x = torch.rand(1, 3, 3, 3)
    first = x[:, 0:1, ...]
    second = x[:, 1:2, ...]
    third = x[:, 2:3, ...]
    kernel = nn.Conv2d(1, 1, 3)
    conv = nn.Conv2d(3, 3, 3, groups=3)
    conv.weight.data = kernel.weight.data.repeat(3, 1, 1, 1)
    conv.bias.data = kernel.bias.data.repeat(3)
    y = conv(x)
    singles = [kernel(first), kernel(second), kernel(third)]
    # ------------------------------------------------------------------------------------------------------------
    single = torch.cat(singles, dim=1)
    res = {"conv_x": [round(float(v), 4) for v in y.detach().flatten()],
           "kernel_each": [round(float(s.detach().flatten()[0]), 4) for s in singles],
           "published_conv_x": [-1.0085, -1.0068, -1.0451],
           "grouped_vs_single_bitwise_equal": bool(torch.equal(y, single))}
    # the answer: gradients of the repeated weight add up to the shared kernel's gradient
    shared = SharedKernelConv2d(3, kernel)
    shared(x).mean().backward()
    conv.zero_grad()
    conv(x).mean().backward()
    summed = conv.weight.grad.sum(0, keepdim=True)
    res["grad_shared_vs_summed_bitwise_equal"] = bool(torch.equal(shared.weight.grad, summed))
    res["grad_shared_vs_summed_max_abs"] = float((shared.weight.grad.double() - summed.double()).abs().max())
    res["bias_grad_shared_vs_summed_max_abs"] = float(
        (shared.bias.grad.double() - conv.bias.grad.sum().double()).abs().max())
    # "average the weights after the step" vs the shared kernel's own step, one step of each optimizer
    for name, cls in (("sgd", torch.optim.SGD), ("adam", torch.optim.Adam)):
        s = SharedKernelConv2d(3, kernel)
        g = nn.Conv2d(3, 3, 3, groups=3)
        g.weight.data = kernel.weight.data.repeat(3, 1, 1, 1).clone()
        g.bias.data = kernel.bias.data.repeat(3).clone()
        for mod in (s, g):
            opt = cls(mod.parameters(), lr=0.1)
            opt.zero_grad()
            mod(x).mean().backward()
            opt.step()
        averaged = g.weight.data.mean(0).unsqueeze(0)
        moved = (s.weight.data - kernel.weight.data).abs().max()
        res[f"{name}_averaged_minus_shared_max_abs"] = float((averaged - s.weight.data).abs().max())
        res[f"{name}_shared_step_max_abs"] = float(moved)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    res = {"source": "PyTorch forums Q&A 'Grouped Convolution for Repeated Convolution Backprop' (as archived in "
                     "https://huggingface.co/datasets/nvidia/Nemotron-CC-Math-v1)",
           "torch": torch.__version__, "shared_kernel_conv2d_reconstructed": True, **question()}
    if a.json:
        print(json.dumps(res, indent=1))
        return
    for k, v in res.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
