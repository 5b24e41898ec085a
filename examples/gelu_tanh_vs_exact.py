"""A negative control that is not rounding: GELU's tanh approximation against the exact (erf) GELU.

The two are different functions; their float64 reruns disagree by about 1e-4 (relative), and the tanh side's
error against the exact reference is hundreds of times the exact side's: the check must say so."""
import torch
import torch.nn.functional as F

labels = ("GELU (erf)", "GELU (tanh approximation)")


def inputs(generator):
    return torch.randn(4096, generator=generator) * 3


def a(x):
    return F.gelu(x)


def b(x):
    return F.gelu(x, approximate="tanh")
