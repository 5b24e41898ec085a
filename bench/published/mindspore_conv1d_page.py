"""MindSpore "Differences with torch.nn.Conv1d" (API mapping page, r2.0 and r2.4.1): the PyTorch side of its claims.

Run: python bench/published/mindspore_conv1d_page.py [--json]

The page's four code examples build ``torch.nn.Conv1d(120, 240, 4)`` (default, ``padding=1``,
``padding_mode='reflect'``) on ``torch.ones(1, 120, 640)`` and print output shapes; it states that PyTorch's
``padding='same'`` pads the left first when the total padding is odd, and that PyTorch's Conv1d has a bias by
default with weights and bias from U(-sqrt(k), sqrt(k)), k = groups / (C_in * kernel_size). MindSpore is not
installed on this machine: its side of the page (``mindspore.nn.Conv1d`` defaults, pad_mode) is run by the case's
probe in its own interpreter and is not checked here (README.md says so).

The 'same' split is measured with an impulse: input of length 16 with a single 1 at position p, weight one-hot at
tap 0, so the output at i is the input at i - left_pad; the extra element of an odd total pad is on the side whose
pad is larger.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings

import torch


def examples() -> dict:
    x = torch.ones(1, 120, 640)
    out = {}
    for key, kw in (("example1", {}), ("example2", {"padding": 1}),
                    ("example3", {"padding": 1, "padding_mode": "reflect"}), ("example4", {})):
        torch.manual_seed(0)
        net = torch.nn.Conv1d(120, 240, 4, **kw)
        out[key] = "x".join(map(str, net(x).shape))
    return out


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


def init_fit() -> dict:
    """Bias by default; KS test of the default weights and bias against U(-sqrt(k), sqrt(k)) (scipy if present)."""
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(120, 240, 4)
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
        res[f"{name}_ks_p"] = float(stats.kstest(t.detach().flatten().double().numpy(), "uniform",
                                                 args=(-b, 2 * b)).pvalue)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    splits = [same_split(k, d) for k in range(1, 7) for d in (1, 2, 3)]
    odd = sorted({s["extra_side"] for s in splits if s["total"] % 2 == 1})
    res = {"source": "https://www.mindspore.cn/docs/en/r2.0/note/api_mapping/pytorch_diff/Conv1d.html",
           "torch": torch.__version__, "examples": examples(), "same_splits": splits,
           "same_odd_total_pad_extra_side": odd[0] if len(odd) == 1 else odd,
           "same2d_odd_total_pad_extra_side": sorted({same_split_2d(k) for k in (2, 4, 6)}),
           "init": init_fit(), "mindspore_side": "not run here (mindspore not installed in this environment)"}
    if a.json:
        print(json.dumps(res, indent=1))
        return
    print("examples:", res["examples"])
    print("padding='same', odd total pad: extra element on the", res["same_odd_total_pad_extra_side"],
          "(2-D:", res["same2d_odd_total_pad_extra_side"], ")")
    print("init:", res["init"])


if __name__ == "__main__":
    main()
