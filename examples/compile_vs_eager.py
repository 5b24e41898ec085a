"""torch.compile (Inductor, CPU) vs eager for a small MLP with LayerNorm and GELU."""
import torch
from torch import nn

labels = ("eager", "torch.compile")
model = nn.Sequential(nn.Linear(64, 256), nn.LayerNorm(256), nn.GELU(), nn.Linear(256, 64))
compiled = torch.compile(model)  # Inductor; compiled at the first call


def inputs(generator):
    return torch.randn(32, 64, generator=generator)


def a(x):
    return model(x)


def b(x):
    return compiled(x)
