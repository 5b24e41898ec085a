"""nn.Conv1d(kernel_size=1) vs nn.Linear with the same weights, on the bundled case's input and parameters."""
import math

import torch
import torch.nn.functional as F

from reportgen.measure.numerics import matmul_bound

labels = ("Linear", "Conv1d")


def inputs(generator):  # drawn as the bundled linear_vs_conv1d case draws them (seed 0)
    k, o = 8, 32
    w = (torch.rand(o, k, generator=generator, dtype=torch.float64) * 2 - 1) / math.sqrt(k)
    b = (torch.rand(o, generator=generator, dtype=torch.float64) * 2 - 1) / math.sqrt(k)
    return torch.randn(128, 256, k, generator=generator, dtype=torch.float64), w, b


def a(x, w, b):
    return F.linear(x, w, b)


def b(x, w, b):
    return F.conv1d(x.permute(0, 2, 1), w.unsqueeze(-1), b).permute(0, 2, 1)


def bound(inp, name, ref):  # the inner-product rounding bound gamma_{K+1} (|x||w|^T + |b|) of float32
    x, w, bias = inp
    return matmul_bound(x, w.t(), torch.float32, bias=bias)
