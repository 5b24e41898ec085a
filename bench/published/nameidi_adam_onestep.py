"""Blog post (nameidi.com/n/zmdd2jnz.html): Conv1d(3, 2, 1) vs Linear(3, 2), one Adam step (lr 0.5), over seeds.

Run: python bench/published/nameidi_adam_onestep.py [--json] [--seeds 1000] [--order modules-first|input-first]

RECONSTRUCTION. The post's text could not be retrieved here (README.md); this script follows the protocol as the
issue and the suite describe it, and says where that description leaves a choice:

* the (10, 3, 3) input from ``torch.rand((10, 3, 3), generator=torch.Generator().manual_seed(seed))`` is treated as
  (N, L, C): the Linear runs on it directly, the Conv1d on ``x.transpose(1, 2)``; the Conv1d's output is
  transposed back, so both outputs are Linear-shaped (N, L, C_out);
* the loss ``out.sum(2).mean()`` therefore sums over the **output channels** (the last axis), then averages;
* the parameters are the modules' **default initialisation under the global seed** ``torch.manual_seed(seed)``;
  the Linear is given the Conv1d's values (weight squeezed). Whether the input comes from its own generator or
  from the global stream (and then before or after the modules are built), the description does not say:
  ``--order`` runs ``generator-input`` (the suite's wording: ``torch.Generator().manual_seed(seed)``),
  ``global-input-first``, ``global-modules-first``, or ``all`` (default);
* one ``torch.optim.Adam(lr=0.5)`` step per module; compared: max |Δ| over weight and bias after the step.

Printed: fractions of seeds with max |Δparam| <= 1e-6, <= 1e-7, and == 0 (bitwise equal), and the largest |Δ|.
"""

from __future__ import annotations

import argparse
import json

import torch


ORDERS = ("generator-input", "global-input-first", "global-modules-first")


def one_seed(seed: int, order: str, lr: float = 0.5) -> float:
    if order == "generator-input":  # input from its own generator, modules' init from the global seed
        torch.manual_seed(seed)
        conv = torch.nn.Conv1d(3, 2, 1)
        linear = torch.nn.Linear(3, 2)
        x = torch.rand((10, 3, 3), generator=torch.Generator().manual_seed(seed))
    elif order == "global-input-first":  # everything from the global stream, input drawn first
        torch.manual_seed(seed)
        x = torch.rand((10, 3, 3))
        conv = torch.nn.Conv1d(3, 2, 1)
        linear = torch.nn.Linear(3, 2)
    else:  # global stream, modules first
        torch.manual_seed(seed)
        conv = torch.nn.Conv1d(3, 2, 1)
        linear = torch.nn.Linear(3, 2)
        x = torch.rand((10, 3, 3))
    with torch.no_grad():
        linear.weight.copy_(conv.weight.squeeze(2))
        linear.bias.copy_(conv.bias)
    opt_l = torch.optim.Adam(linear.parameters(), lr=lr)
    opt_c = torch.optim.Adam(conv.parameters(), lr=lr)
    out_l = linear(x)
    out_c = conv(x.transpose(1, 2)).transpose(1, 2)
    for opt, out in ((opt_l, out_l), (opt_c, out_c)):
        opt.zero_grad()
        out.sum(2).mean().backward()
        opt.step()
    dw = (linear.weight.detach().double() - conv.weight.detach().squeeze(2).double()).abs().max()
    db = (linear.bias.detach().double() - conv.bias.detach().double()).abs().max()
    return float(max(dw, db))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seeds", type=int, default=1000)
    ap.add_argument("--order", choices=ORDERS + ("all",), default="all")
    a = ap.parse_args()
    res = {"source": "https://www.nameidi.com/n/zmdd2jnz.html", "reconstructed": True, "torch": torch.__version__,
           "threads": torch.get_num_threads(), "seeds": a.seeds, "orders": {}}
    for order in (ORDERS if a.order == "all" else (a.order,)):
        d = [one_seed(s, order) for s in range(a.seeds)]
        n = len(d)
        res["orders"][order] = {"frac_within_1e-6": sum(v <= 1e-6 for v in d) / n,
                                "frac_within_1e-7": sum(v <= 1e-7 for v in d) / n,
                                "frac_exactly_equal": sum(v == 0.0 for v in d) / n, "max_dparam": max(d),
                                "first_10_dparam": d[:10]}
    if a.json:
        print(json.dumps(res, indent=1))
        return
    for order, r in res["orders"].items():
        print(f"{a.seeds} seeds ({order}): within 1e-6 {r['frac_within_1e-6']:.3f}, within 1e-7 "
              f"{r['frac_within_1e-7']:.3f}, exactly equal {r['frac_exactly_equal']:.3f}, max |dparam| "
              f"{r['max_dparam']:.3g}")

if __name__ == "__main__":
    main()
