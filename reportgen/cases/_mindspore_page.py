"""MindSpore's page "Function Differences with torch.nn.Conv1d" (r2.0): its four code examples, as published.

Shared by ``conv1d_semantics`` (the PyTorch halves, run here) and ``conv1d_cross_framework`` (both halves; the
MindSpore ones run as text by the MindSpore probe in its own interpreter). The text is the page's source
(mindspore-ai/docs, docs/mindspore/source_en/note/api_mapping/pytorch_diff/Conv1d.md at r2.0), each half as one
snippet; the ``# (1, 240, 637)`` comment under each ``print(output)`` is what the page says it prints.

Notable as published: example 3's MindSpore half pads with ``nn.Pad(paddings=((0,0),(1,1),(1,1)))`` on an
(N, C, L) tensor, so the channel axis is reflect-padded too (120 -> 122 channels) and the convolution after it is
``nn.Conv1d(122, 240, 4)``: the printed shape matches PyTorch's, the computation does not.
"""

from __future__ import annotations

import re

from reportgen.published import Published, PublishedRun, run_published

SOURCE = "https://www.mindspore.cn/docs/en/r2.0/note/api_mapping/pytorch_diff/Conv1d.html"

_TORCH_HEAD = """# PyTorch
import torch
from torch import tensor
import numpy as np

x_ = np.ones((1, 120, 640))
x = tensor(x_, dtype=torch.float32)
"""
_TORCH_TAIL = """output = net(x).detach().numpy().shape
print(output)
"""
_MS_HEAD = """# MindSpore
import mindspore
from mindspore import Tensor
import mindspore.nn as nn
import numpy as np
"""

#: (PyTorch half, MindSpore half) of code examples 1-4, as on the page (example 3's MindSpore half has no blank
#: line after its imports there either)
EXAMPLES: tuple[tuple[str, str], ...] = (
    (_TORCH_HEAD + "net = torch.nn.Conv1d(120, 240, 4)\n" + _TORCH_TAIL + "# (1, 240, 637)\n",
     _MS_HEAD + "\nx_ = np.ones((1, 120, 640))\nx = Tensor(x_, mindspore.float32)\n"
     "net = nn.Conv1d(120, 240, 4, has_bias=True, pad_mode='valid')\noutput = net(x).shape\nprint(output)\n"
     "# (1, 240, 637)\n"),
    (_TORCH_HEAD + "net = torch.nn.Conv1d(120, 240, 4, padding=1, padding_mode='zeros')\n" + _TORCH_TAIL
     + "# (1, 240, 639)\n",
     _MS_HEAD + "\nx_ = np.ones((1, 120, 640))\nx = Tensor(x_, mindspore.float32)\n"
     "net = nn.Conv1d(120, 240, 4, padding=1, pad_mode='pad')\noutput = net(x).shape\nprint(output)\n"
     "# (1, 240, 639)\n"),
    (_TORCH_HEAD + "net = torch.nn.Conv1d(120, 240, 4, padding=1, padding_mode='reflect')\n" + _TORCH_TAIL
     + "# (1, 240, 639)\n",
     _MS_HEAD + "x_ = np.ones((1, 120, 640))\nx = Tensor(x_, mindspore.float32)\n"
     "pad = nn.Pad(paddings=((0,0),(1,1),(1,1)), mode=\"REFLECT\")\nx_pad = pad(x)\n"
     "net = nn.Conv1d(122, 240, 4, padding=0, pad_mode='valid')\noutput = net(x_pad).shape\nprint(output)\n"
     "# (1, 240, 639)\n"),
    (_TORCH_HEAD + "net = torch.nn.Conv1d(120, 240, 4)\n" + _TORCH_TAIL + "# (1, 240, 637)\n",
     _MS_HEAD + "\nx_ = np.ones((1, 120, 640))\nx = Tensor(x_, mindspore.float32)\n"
     "net = nn.Conv1d(120, 240, 4, pad_mode='valid')\noutput = net(x).shape\nprint(output)\n# (1, 240, 637)\n"),
)

_SAYS = re.compile(r"^print\(output\)\n# (\(.*\))$", re.M)

#: the page sets no seed and a fresh interpreter seeds torch's generator at random: the case seeds it
SEED_EDIT = ("the page sets no seed (a fresh interpreter seeds torch's generator at random); the run seeds the "
             "global generator with the suite's seed first, so its default-initialised modules are reproducible "
             "(the printed shapes do not depend on it)")


def page_says(snippet: str) -> str:
    """What the page prints under ``print(output)``: the comment line after it, e.g. ``(1, 240, 637)``."""
    m = _SAYS.search(snippet)
    if m is None:
        raise ValueError("no '# (...)' comment after print(output) in the page's snippet")
    return m.group(1)


def torch_published(number: int) -> Published:
    return Published(source=SOURCE, title=f"MindSpore's Conv1d page, code example {number} (PyTorch)",
                     snippet=EXAMPLES[number - 1][0], edits=(SEED_EDIT,), outputs=("net", "output"))


def run_torch_examples(seed: int) -> list[PublishedRun]:
    """The page's four PyTorch halves, each in its own namespace, the global generator seeded with ``seed``."""
    import torch

    # torch.manual_seed seeds every CUDA generator too: fork them all, so that nothing outside is disturbed
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    runs = []
    for i in range(1, len(EXAMPLES) + 1):
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            runs.append(run_published(torch_published(i)))
    return runs


def publish_examples(out, runs: list[PublishedRun], prefix: str) -> list[bool]:
    """Facts ``<prefix>example<N>.{printed,page_says,matches_page}`` for the PyTorch halves' runs; returns the
    matches, example by example."""
    matches = []
    for i, run in enumerate(runs, 1):
        printed, says = run.printed.strip(), page_says(run.published.snippet)
        out.fact(f"{prefix}example{i}.printed", printed)
        out.fact(f"{prefix}example{i}.page_says", says)
        out.fact(f"{prefix}example{i}.matches_page", printed == says)
        matches.append(printed == says)
    return matches


def section(runs: list[PublishedRun], departures: tuple[str, ...], *, mindspore: dict | None = None) -> dict:
    """One ``extra["published"]`` section for the four examples: their text joined as the page lays it out,
    what each printed, and (cross-framework) the MindSpore halves with what the probe printed."""
    head = runs[0].published
    parts, printed = [], []
    for i, run in enumerate(runs, 1):
        text = f"### Code Example {i}\n" + run.published.snippet
        printed.append(f"example {i} (PyTorch): {run.printed.strip()}")
        if mindspore is not None:
            text += "\n" + EXAMPLES[i - 1][1]
            ms_printed = (mindspore.get(i) or {}).get("printed")
            printed.append(f"example {i} (MindSpore): "
                           + (ms_printed.strip() if ms_printed else (mindspore.get(i) or {}).get("error", "not run")))
        parts.append(text)
    return {"source": head.source, "title": "MindSpore's Conv1d page, code examples 1-4"
            + (" (PyTorch and MindSpore)" if mindspore is not None else " (PyTorch halves)"),
            "snippet": "\n".join(parts), "edits": list(head.edits), "departures": list(departures),
            "outputs": list(head.outputs), "seed_call": None, "printed": "\n".join(printed)}
