"""MindSpore "Function Differences with torch.nn.Conv1d" (API mapping page, r2.0): its claims about PyTorch, and
its four code examples run as published.

Run: python bench/published/mindspore_conv1d_page.py [--json] [--seed 0] [--mindspore-python PATH]

The page's source (mindspore-ai/docs, docs/mindspore/source_en/note/api_mapping/pytorch_diff/Conv1d.md, r2.0)
has four code examples, each a PyTorch half and a MindSpore half that print an output shape, with the shape the
page expects as a comment under ``print(output)``. This script keeps its own copy of that text (it does not import
reportgen), runs every PyTorch half in a fresh namespace of this process after ``torch.manual_seed(--seed)`` (the
page sets no seed), and, given ``--mindspore-python``, every MindSpore half in a child of that interpreter. It
also tests example 1's own module's initialisation against U(-sqrt(k), sqrt(k)) (the page's statement), states
that PyTorch's ``padding='same'`` pads the left first when the total padding is odd (measured here with an
impulse), and that PyTorch's Conv1d has a bias by default.

The 'same' split is measured with an impulse: input of length 16 with a single 1 at position p, weight one-hot at
tap 0, so the output at i is the input at i - left_pad; the extra element of an odd total pad is on the side whose
pad is larger.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import re
import subprocess
import warnings

import torch


# The page's code examples, (PyTorch half, MindSpore half), as on the page.
PAGE_EXAMPLES = [
    ("""# PyTorch
import torch
from torch import tensor
import numpy as np

x_ = np.ones((1, 120, 640))
x = tensor(x_, dtype=torch.float32)
net = torch.nn.Conv1d(120, 240, 4)
output = net(x).detach().numpy().shape
print(output)
# (1, 240, 637)
""", """# MindSpore
import mindspore
from mindspore import Tensor
import mindspore.nn as nn
import numpy as np

x_ = np.ones((1, 120, 640))
x = Tensor(x_, mindspore.float32)
net = nn.Conv1d(120, 240, 4, has_bias=True, pad_mode='valid')
output = net(x).shape
print(output)
# (1, 240, 637)
"""),
    ("""# PyTorch
import torch
from torch import tensor
import numpy as np

x_ = np.ones((1, 120, 640))
x = tensor(x_, dtype=torch.float32)
net = torch.nn.Conv1d(120, 240, 4, padding=1, padding_mode='zeros')
output = net(x).detach().numpy().shape
print(output)
# (1, 240, 639)
""", """# MindSpore
import mindspore
from mindspore import Tensor
import mindspore.nn as nn
import numpy as np

x_ = np.ones((1, 120, 640))
x = Tensor(x_, mindspore.float32)
net = nn.Conv1d(120, 240, 4, padding=1, pad_mode='pad')
output = net(x).shape
print(output)
# (1, 240, 639)
"""),
    ("""# PyTorch
import torch
from torch import tensor
import numpy as np

x_ = np.ones((1, 120, 640))
x = tensor(x_, dtype=torch.float32)
net = torch.nn.Conv1d(120, 240, 4, padding=1, padding_mode='reflect')
output = net(x).detach().numpy().shape
print(output)
# (1, 240, 639)
""", """# MindSpore
import mindspore
from mindspore import Tensor
import mindspore.nn as nn
import numpy as np
x_ = np.ones((1, 120, 640))
x = Tensor(x_, mindspore.float32)
pad = nn.Pad(paddings=((0,0),(1,1),(1,1)), mode="REFLECT")
x_pad = pad(x)
net = nn.Conv1d(122, 240, 4, padding=0, pad_mode='valid')
output = net(x_pad).shape
print(output)
# (1, 240, 639)
"""),
    ("""# PyTorch
import torch
from torch import tensor
import numpy as np

x_ = np.ones((1, 120, 640))
x = tensor(x_, dtype=torch.float32)
net = torch.nn.Conv1d(120, 240, 4)
output = net(x).detach().numpy().shape
print(output)
# (1, 240, 637)
""", """# MindSpore
import mindspore
from mindspore import Tensor
import mindspore.nn as nn
import numpy as np

x_ = np.ones((1, 120, 640))
x = Tensor(x_, mindspore.float32)
net = nn.Conv1d(120, 240, 4, pad_mode='valid')
output = net(x).shape
print(output)
# (1, 240, 637)
"""),
]

# The child that runs one MindSpore half in the MindSpore interpreter: what it printed, and x_pad's shape if any.
_MS_CHILD = r"""
import contextlib, io, json, sys
ns, buf = {"__name__": "__main__"}, io.StringIO()
with contextlib.redirect_stdout(buf):
    exec(compile(sys.stdin.read(), "<page example>", "exec"), ns)
pad = ns.get("x_pad")
print(json.dumps({"printed": buf.getvalue().strip(),
                  "padded_shape": None if pad is None else "x".join(str(int(s)) for s in pad.shape)}))
"""


def says(text: str) -> str:
    return re.search(r"^print\(output\)\n# (\(.*\))$", text, re.M).group(1)


def run_torch_half(text: str, seed: int) -> dict:
    torch.manual_seed(seed)  # the page sets none; a fresh interpreter would seed at random
    ns, buf = {"__name__": "__main__"}, io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(text, "<page example>", "exec"), ns)
    return {"printed": buf.getvalue().strip(), "page_says": says(text), "net": ns["net"]}


def run_ms_half(python: str, text: str) -> dict:
    proc = subprocess.run([python, "-c", _MS_CHILD], input=text, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:300]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def examples(seed: int, ms_python: str | None) -> tuple[dict, torch.nn.Module]:
    out, first = {}, None
    for i, (torch_half, ms_half) in enumerate(PAGE_EXAMPLES, 1):
        r = run_torch_half(torch_half, seed)
        first = first or r["net"]
        out[f"example{i}"] = {"torch_printed": r["printed"], "page_says": r["page_says"],
                              "mindspore": run_ms_half(ms_python, ms_half) if ms_python else None}
    return out, first


def same_split(kernel: int, dilation: int) -> dict:
    """(left, right) padding torch's padding='same' applies, read from the output of an impulse."""
    length = 16
    total = dilation * (kernel - 1)
    w = torch.zeros(1, 1, kernel)
    w[0, 0, 0] = 1.0  # output[i] = padded[i] = input[i - left]
    x = torch.zeros(1, 1, length)
    x[0, 0, length // 2] = 1.0
    with warnings.catch_warnings():  # "padding='same' with even kernel lengths ... may require a copy": known
        warnings.simplefilter("ignore", UserWarning)
        y = torch.nn.functional.conv1d(x, w, padding="same", dilation=dilation)
    left = int(y[0, 0].argmax()) - length // 2  # the impulse moved right by the left pad
    right = total - left
    side = "none" if left == right else ("left" if left > right else "right")
    return {"kernel": kernel, "dilation": dilation, "total": total, "left": left, "right": right,
            "extra_side": side}


def same_split_2d(kernel: int) -> str:
    w = torch.zeros(1, 1, kernel, kernel)
    w[0, 0, 0, 0] = 1.0
    x = torch.zeros(1, 1, 12, 12)
    x[0, 0, 6, 6] = 1.0
    y = torch.nn.functional.conv2d(x, w, padding="same")
    r, c = divmod(int(y[0, 0].flatten().argmax()), 12)
    top, left = r - 6, c - 6
    total = kernel - 1
    v = "top" if top > total - top else ("bottom" if top < total - top else "none")
    h = "left" if left > total - left else ("right" if left < total - left else "none")
    return f"{v}-{h}"


def init_fit(conv: torch.nn.Module) -> dict:
    """Bias by default; KS test of the page's example-1 module's weights and bias against U(-sqrt(k), sqrt(k)),
    and against a range 10 % too wide (the test's power) -- scipy if present."""
    k = 1 / (120 * 4)
    res = {"bias_present_by_default": conv.bias is not None, "bound_sqrt_k": math.sqrt(k),
           "weight_abs_max": float(conv.weight.detach().abs().max()),
           "bias_abs_max": float(conv.bias.detach().abs().max())}
    try:
        from scipy import stats
    except ImportError:
        res["ks"] = "scipy not installed"
        return res
    b = math.sqrt(k)
    for name, t in (("weight", conv.weight), ("bias", conv.bias)):
        samples = t.detach().flatten().double().numpy()
        res[f"{name}_ks_p"] = float(stats.kstest(samples, stats.uniform(loc=-b, scale=2 * b).cdf).pvalue)
        res[f"{name}_ks_p_range_10pct_wider"] = float(
            stats.kstest(samples, stats.uniform(loc=-1.1 * b, scale=2.2 * b).cdf).pvalue)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mindspore-python", help="a python with MindSpore: run the page's MindSpore halves there")
    a = ap.parse_args()
    ex, first = examples(a.seed, a.mindspore_python)
    splits = [same_split(k, d) for k in range(1, 7) for d in (1, 2, 3)]
    odd = sorted({s["extra_side"] for s in splits if s["total"] % 2 == 1})
    res = {"source": "https://www.mindspore.cn/docs/en/r2.0/note/api_mapping/pytorch_diff/Conv1d.html",
           "torch": torch.__version__, "seed": a.seed, "examples": ex, "same_splits": splits,
           "same_odd_total_pad_extra_side": odd[0] if len(odd) == 1 else odd,
           "same2d_odd_total_pad_extra_side": sorted({same_split_2d(k) for k in (2, 4, 6)}),
           "init": init_fit(first)}
    if a.json:
        print(json.dumps(res, indent=1))
        return
    for key, e in res["examples"].items():
        ms = e["mindspore"] or {}
        print(f"{key}: page says {e['page_says']}; PyTorch printed {e['torch_printed']}; MindSpore printed "
              f"{ms.get('printed', ms.get('error', 'not run (--mindspore-python)'))}"
              + (f" (its nn.Pad made {ms['padded_shape']})" if ms.get("padded_shape") else ""))
    print("padding='same', odd total pad: extra element on the", res["same_odd_total_pad_extra_side"],
          "(2-D:", res["same2d_odd_total_pad_extra_side"], ")")
    print("init:", res["init"])


if __name__ == "__main__":
    main()
