"""StackOverflow "Conv1d with kernel_size=1 vs Linear layer" (question 55576314), the answer's code as published.

Run: python bench/published/stackoverflow_conv1d_linear.py [--json] [--seed N] [--no-timing]

The answer's code (quoted in bench/published/README.md) builds nn.Conv1d(8, 32, 1) and nn.Linear(8, 32) with their
default initialisation, gives the Linear the Conv1d's parameters (``nn.Parameter(conv.weight.squeeze(2))``),
draws ``tensor = torch.randn(128, 256, 8)``, feeds the Linear the tensor and the Conv1d
``tensor.permute(0, 2, 1).clone().contiguous()``, prints both outputs' means and times both with IPython's
``%%timeit``. The answer sets no seed; ``--seed`` (default 0) is the one thing added, so that two runs agree.

Printed: the forward comparison (bitwise-equal fraction, max |diff|), the gradients of ``out.mean()`` (the answer
says gradients differ too; its code does not compute them, so this part is labelled an extension), the depth
growth the answer asserts (a stack the post implies: default-initialised layers, Linear given the Conv1d's
parameters; absolute and relative to the output magnitude), and the ``%%timeit`` equivalent in this process.
"""

from __future__ import annotations

import argparse
import json
import timeit

import torch


def published(seed: int) -> dict:
    torch.manual_seed(seed)
    # --- as published -----------------------------------------------------------------------------------------
    conv = torch.nn.Conv1d(8, 32, 1)
    linear = torch.nn.Linear(8, 32)
    linear.weight = torch.nn.Parameter(conv.weight.squeeze(2))
    linear.bias = torch.nn.Parameter(conv.bias)
    tensor = torch.randn(128, 256, 8)
    permuted_tensor = tensor.permute(0, 2, 1).clone().contiguous()
    out_linear = linear(tensor)
    out_conv = conv(permuted_tensor)
    # ------------------------------------------------------------------------------------------------------------
    conv_as_linear = out_conv.permute(0, 2, 1)
    out_linear, conv_as_linear = out_linear.detach(), conv_as_linear.detach()
    diff = (out_linear.double() - conv_as_linear.double()).abs()
    res = {"out_linear_mean": float(out_linear.detach().mean()), "out_conv_mean": float(out_conv.detach().mean()),
           "fwd_bitwise_equal_fraction": float((out_linear == conv_as_linear).double().mean()),
           "fwd_max_abs_diff": float(diff.max()),
           "fwd_max_abs_diff_over_max_abs_out": float(diff.max() / out_linear.abs().max())}
    # Extension: gradients of out.mean() (the answer says they differ; its code stops at the forward). Linear and
    # Conv1d share their Parameters in the published code, so each side is run on its own copy.
    lin2 = torch.nn.Linear(8, 32)
    conv2 = torch.nn.Conv1d(8, 32, 1)
    with torch.no_grad():
        conv2.weight.copy_(conv.weight)
        conv2.bias.copy_(conv.bias)
        lin2.weight.copy_(conv.weight.squeeze(2))
        lin2.bias.copy_(conv.bias)
    xl = tensor.clone().requires_grad_(True)
    xc = permuted_tensor.clone().requires_grad_(True)
    lin2(xl).mean().backward()
    conv2(xc).mean().backward()
    pairs = {"weight": (lin2.weight.grad, conv2.weight.grad.squeeze(2)), "bias": (lin2.bias.grad, conv2.bias.grad),
             "input": (xl.grad, xc.grad.permute(0, 2, 1))}
    res["grad_bitwise_equal_fraction"] = {k: float((a == b).double().mean()) for k, (a, b) in pairs.items()}
    res["grad_max_abs_diff"] = {k: float((a.double() - b.double()).abs().max()) for k, (a, b) in pairs.items()}
    return res


def depth_growth(seed: int, depths: tuple[int, ...] = (1, 2, 4, 8, 16, 32)) -> list[dict]:
    """The answer's 'the deeper the network, the bigger the difference', on the stack its code implies: Conv1d(8,
    32, 1) then Conv1d(32, 32, 1) layers, each default-initialised under the global seed, the Linear stack given
    the same parameters; the input as published."""
    rows = []
    for depth in depths:
        torch.manual_seed(seed)
        convs = [torch.nn.Conv1d(8 if i == 0 else 32, 32, 1) for i in range(depth)]
        lins = []
        for c in convs:
            lin = torch.nn.Linear(c.in_channels, 32)
            lin.weight = torch.nn.Parameter(c.weight.squeeze(2))
            lin.bias = torch.nn.Parameter(c.bias)
            lins.append(lin)
        tensor = torch.randn(128, 256, 8)
        with torch.no_grad():
            yl = torch.nn.Sequential(*lins)(tensor)
            yc = torch.nn.Sequential(*convs)(tensor.permute(0, 2, 1).clone().contiguous()).permute(0, 2, 1)
        d = float((yl.double() - yc.double()).abs().max())
        rows.append({"depth": depth, "max_abs_diff": d, "max_abs_out": float(yl.abs().max()),
                     "rel_diff": d / float(yl.abs().max())})
    return rows


def timing(seed: int) -> dict:
    """IPython's %%timeit: autorange for the loop count, then 7 runs; it prints mean +- std of the per-loop time."""
    torch.manual_seed(seed)
    conv = torch.nn.Conv1d(8, 32, 1)
    linear = torch.nn.Linear(8, 32)
    linear.weight = torch.nn.Parameter(conv.weight.squeeze(2))
    linear.bias = torch.nn.Parameter(conv.bias)
    tensor = torch.randn(128, 256, 8)
    permuted_tensor = tensor.permute(0, 2, 1).clone().contiguous()
    out = {}
    for name, fn in (("linear", lambda: linear(tensor)), ("conv", lambda: conv(permuted_tensor))):
        t = timeit.Timer(fn)
        number, _ = t.autorange()
        runs = [r / number for r in t.repeat(repeat=7, number=number)]
        out[name] = {"per_loop_s_mean": sum(runs) / len(runs), "runs_s": runs, "number": number}
    out["conv_over_linear"] = out["conv"]["per_loop_s_mean"] / out["linear"]["per_loop_s_mean"]
    out["published"] = {"linear_s": 151e-6, "conv_s": 1.43e-3, "conv_over_linear": 1.43e-3 / 151e-6}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-timing", action="store_true")
    a = ap.parse_args()
    res = {"source": "https://stackoverflow.com/questions/55576314/conv1d-with-kernel-size-1-vs-linear-layer",
           "torch": torch.__version__, "threads": torch.get_num_threads(), "seed": a.seed,
           "published": published(a.seed), "depth_growth_default_init": depth_growth(a.seed)}
    if not a.no_timing:
        res["timing_this_process"] = timing(a.seed)
    if a.json:
        print(json.dumps(res, indent=1))
        return
    p = res["published"]
    print(f"means: linear {p['out_linear_mean']:.6g} conv {p['out_conv_mean']:.6g}; forward bitwise-equal "
          f"{p['fwd_bitwise_equal_fraction']:.4f}, max |diff| {p['fwd_max_abs_diff']:.3g}")
    print("grad bitwise-equal:", p["grad_bitwise_equal_fraction"], "max |diff|:", p["grad_max_abs_diff"])
    for r in res["depth_growth_default_init"]:
        print(f"depth {r['depth']:>2}: max |diff| {r['max_abs_diff']:.3g}  |out| {r['max_abs_out']:.3g}  "
              f"rel {r['rel_diff']:.3g}")
    if "timing_this_process" in res:
        t = res["timing_this_process"]
        print(f"%%timeit: linear {t['linear']['per_loop_s_mean'] * 1e6:.1f} us, conv "
              f"{t['conv']['per_loop_s_mean'] * 1e6:.1f} us, conv/linear {t['conv_over_linear']:.2f} "
              f"(published 151 us / 1.43 ms = {t['published']['conv_over_linear']:.1f})")


if __name__ == "__main__":
    main()
