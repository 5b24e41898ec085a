"""One 3x3 kernel shared by every channel: three ways to write it, their gradients, and how to train it.

Source: a Q&A thread asking how to apply one learnable 3x3 kernel to every channel of an image. Three
formulations are compared:

(a) ``shared``: one (1, 1, 3, 3) parameter, ``F.conv2d(x, w.expand(C, -1, -1, -1), groups=C)``; autograd sums the
    gradient over the expanded copies, so the parameter gets the true gradient of the shared kernel;
(b) ``repeated``: a grouped conv whose (C, 1, 3, 3) weight holds C copies of the kernel; its per-copy gradients
    summed over the groups should equal (a)'s gradient;
(c) ``loop``: C single-channel convs with the same (1, 1, 3, 3) weight, concatenated.

Every side is checked against a float64 reference computed from the same rounded inputs, in units of the
inner-product error bound (a 3x3 conv output is a 9-term dot product; a weight-gradient element sums N*H*W*C
products). Training then compares the correct updates (a), (b) with summed gradients, and the answer that keeps
the copies tied by *averaging the repeated weights after each step*: with SGD that is the correct step divided
by C (a learning rate C times too small); with Adam, the mean of per-copy Adam steps, which is not the Adam step
of the shared kernel at all.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from reportgen.facts import (ANY, BOOL, EXPLAIN_FACTS, NUMBER, STR, FactSpec, comparison_facts, facts,
                             schema, timing_facts)
from reportgen.cases import CaseContext, CaseOutput, CaseSkipped, register
from reportgen.engine import SideOutput, judge, time_sides
from reportgen.measure.numerics import gamma

DEFAULTS: dict[str, Any] = {
    "batch": 8,
    "channels": 16,
    "height": 32,
    "width": 32,
    # Training runs on its own, smaller batch (train_batch, channels, train_size, train_size): 4 trainers x 2
    # optimizers x train_steps steps, one of them in float64, must stay cheap.
    "train_batch": 4,
    "train_size": 16,
    "train_steps": 100,
    "train_report_steps": [1, 10, 100],
    "sgd_lr": 0.05,
    "adam_lr": 0.01,
}
_FACT_KEYS = ("verdict", "max_abs", "max_normalised", "bitwise_equal_fraction", "max_rel")
_SIDES = {"shared": "(a) shared kernel, expand", "repeated": "(b) repeated kernel, grouped",
          "loop": "(c) loop of single-channel convs"}


# ----------------------------------------------------------------------------------------------- the three sides

def _shared(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, w.expand(x.shape[1], -1, -1, -1), padding=1, groups=x.shape[1])


def _repeated(x: torch.Tensor, w_rep: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, w_rep, padding=1, groups=x.shape[1])


def _loop(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return torch.cat([F.conv2d(x[:, c:c + 1], w, padding=1) for c in range(x.shape[1])], dim=1)


def _inputs(ctx: CaseContext) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    p = ctx.params
    gen = ctx.generator()
    x = ctx.randn(p["batch"], p["channels"], p["height"], p["width"], gen=gen)
    w = ctx.randn(1, 1, 3, 3, gen=gen) / 3  # ~ PyTorch's default range for fan_in 9
    g = ctx.randn(p["batch"], p["channels"], p["height"], p["width"], gen=gen)  # upstream gradient dL/dy
    return x, w, g


def _check_supported(ctx: CaseContext) -> None:
    try:
        x = torch.ones(1, 2, 4, 4, device=ctx.device, dtype=ctx.dtype)
        w = torch.ones(1, 1, 3, 3, device=ctx.device, dtype=ctx.dtype, requires_grad=True)
        _shared(x, w).sum().backward()
    except (RuntimeError, NotImplementedError) as exc:
        raise CaseSkipped(f"{ctx.dtype} grouped conv2d not supported on {ctx.device}: "
                          f"{str(exc).splitlines()[0]}") from None


# ----------------------------------------------------------------------------------------------- equivalence

def _grads(x: torch.Tensor, w: torch.Tensor, g: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Output and weight gradient of each side for L = sum(y * g), so dL/dy = g exactly on every side."""
    out = {}
    for name in _SIDES:
        leaf = (w.repeat(x.shape[1], 1, 1, 1) if name == "repeated" else w).detach().clone().requires_grad_(True)
        y = {"shared": _shared, "repeated": _repeated, "loop": _loop}[name](x, leaf)
        (y * g).sum().backward()
        grad = leaf.grad.sum(0, keepdim=True) if name == "repeated" else leaf.grad  # sum over the groups
        out[name] = (y.detach(), grad.detach())
    return out


def _forward_bound(x: torch.Tensor, w: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    # |fl(conv) - conv| <= gamma_9 * conv(|x|, |w|): 9 products per output (3x3 kernel), any order.
    return gamma(9, dtype) * _shared(x.double().abs(), w.double().abs())


def _equivalence(ctx: CaseContext, out: CaseOutput) -> None:
    x, w, g = _inputs(ctx)
    sides = _grads(x, w, g)
    dtype, k = ctx.dtype, ctx.bound_factor
    n_terms = x.shape[0] * x.shape[2] * x.shape[3]
    x64, w64, g64 = x.double(), w.double(), g.double()
    w64_leaf = w64.clone().requires_grad_(True)
    y64 = _shared(x64, w64_leaf)
    (y64 * g64).sum().backward()
    fwd_bound = _forward_bound(x, w, dtype)
    # Weight gradient: N*H*W products per group, then C group sums (b: explicit, a/c: inside the kernel or
    # autograd's accumulation): at most N*H*W + C - 2 additions in any order, so gamma_{N*H*W + C} covers it.
    # Its scale sum |g||x| is the float64 weight gradient of the absolute values.
    w_abs = torch.zeros_like(w64, requires_grad=True)
    (_shared(x64.abs(), w_abs) * g64.abs()).sum().backward()
    grad_bound = gamma(n_terms + x.shape[1], dtype) * w_abs.grad
    _sides_vs_reference(out, sides, y64.detach(), w64_leaf.grad, fwd_bound, grad_bound, k, n_terms + x.shape[1])


def _sides_vs_reference(out: CaseOutput, sides: dict[str, tuple[torch.Tensor, torch.Tensor]], y64: torch.Tensor,
                        gw64: torch.Tensor, fwd_bound: torch.Tensor, grad_bound: torch.Tensor, k: float,
                        n_grad: int) -> None:
    for part, idx, ref, bound, desc in (("fwd", 0, y64, fwd_bound, "γ_9·conv(|x|, |w|)"),
                                        ("grad", 1, gw64, grad_bound, f"γ_{n_grad}·Σ|g||x| (weight gradient)")):
        summed = " (gradients summed over groups)" if part == "grad" else ""
        judge(out, part, [SideOutput(name, label, sides[name][idx], bound) for name, label in _SIDES.items()], ref,
              desc=desc, factor=k, keys=_FACT_KEYS, pairs=[("shared", "repeated"), ("shared", "loop")],
              ref_label="float64", pair_desc=f"2·{desc}",
              pair_label=lambda s: s.label + (summed if s.key == "repeated" else ""))


# ----------------------------------------------------------------------------------------------- why

_WHY_LABELS = {"shared": "(a) expand", "repeated": "(b) repeated", "loop": "(c) loop"}


def _why(ctx: CaseContext, out: CaseOutput) -> None:
    """Which implementation each formulation's forward ran, and whether each is reproducible (kernels + determinism).

    Sides are the three forwards on the case's input, the outputs whose bound the case already checks: the expanded
    weight is a stride-0 view, so (a) and (b) may reach the grouped (depthwise) kernel through different layout
    handling, and (c) runs C single-channel convolutions, a different kernel and problem shape altogether.
    """

    x, w, _ = _inputs(ctx)
    w_rep = w.repeat(x.shape[1], 1, 1, 1)
    fns = {"shared": lambda: _shared(x, w), "repeated": lambda: _repeated(x, w_rep), "loop": lambda: _loop(x, w)}
    sides = {_WHY_LABELS[name]: fn for name, fn in fns.items()}
    bound = ctx.bound_factor * _forward_bound(x, w, ctx.dtype)  # the equivalence check's, for every formulation
    out.explain(ctx, sides, bound)
    out.note(f"Kernels and determinism: the forward of {_SIDES['shared']}, {_SIDES['repeated']} and "
             f"{_SIDES['loop']} on the case's ({', '.join(map(str, x.shape))}) input; differences in units of "
             "γ_9·conv(|x|, |w|) per side (summed over the two sides for a pair).")


# ----------------------------------------------------------------------------------------------- training

class _Trainer:
    """One way of training the shared kernel: its parameter, optimizer, and what it does around the step."""

    def __init__(self, approach: str, w0: torch.Tensor, channels: int, opt: str, lr: float) -> None:
        self.approach = approach
        init = w0.repeat(channels, 1, 1, 1) if approach in ("summed", "averaged") else w0
        self.param = init.detach().clone().requires_grad_(True)
        cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[opt]
        self.opt = cls([self.param], lr=lr)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _repeated(x, self.param) if self.approach in ("summed", "averaged") else _shared(x, self.param)

    def step(self, x: torch.Tensor, target: torch.Tensor) -> float:
        self.opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(self.forward(x), target)
        loss.backward()
        if self.approach == "summed":  # (b) done right: every copy gets the summed gradient
            self.param.grad = self.param.grad.sum(0, keepdim=True).expand_as(self.param).clone()
        self.opt.step()
        if self.approach == "averaged":  # the answer under test: tie the copies again after the step
            with torch.no_grad():
                self.param.copy_(self.param.mean(0, keepdim=True).expand_as(self.param))
        return float(loss.detach())

    def kernel(self) -> torch.Tensor:
        return self.param.detach()[:1].double()


_APPROACHES = {"shared": "(a) shared kernel", "summed": "(b) repeated, gradients summed",
               "averaged": "repeated, weights averaged after the step"}


def _train(ctx: CaseContext, opt: str, lr: float) -> dict[str, Any]:
    """Train every approach (in the case dtype) and the shared kernel in float64 on one fixed batch."""
    p = ctx.params
    gen = ctx.generator(1)
    x = ctx.randn(p["train_batch"], p["channels"], p["train_size"], p["train_size"], gen=gen)
    w_true, w0 = ctx.randn(1, 1, 3, 3, gen=gen) / 3, ctx.randn(1, 1, 3, 3, gen=gen) / 3
    target = _shared(x.double(), w_true.double())  # the problem has an exact solution, w_true
    ref = _Trainer("shared", w0.double(), p["channels"], opt, lr)
    sides = {a: _Trainer(a, w0, p["channels"], opt, lr) for a in _APPROACHES}
    w_start = w0.double()
    rec: dict[str, list[float]] = {f"{a}.{m}": [] for a in _APPROACHES for m in ("err", "loss")}
    rec["ref.moved"], rec["ref.loss"], rec["averaged.step_ratio"] = [], [], []
    for _ in range(p["train_steps"]):
        rec["ref.loss"].append(ref.step(x.double(), target))
        w_ref = ref.kernel()
        moved = float((w_ref - w_start).norm())
        rec["ref.moved"].append(moved)
        for a, t in sides.items():
            rec[f"{a}.loss"].append(t.step(x, target.to(x.dtype)))
            # Distance from the float64 trajectory, relative to how far that trajectory has moved.
            rec[f"{a}.err"].append(float((t.kernel() - w_ref).norm()) / moved if moved > 0 else float("nan"))
        rec["averaged.step_ratio"].append(float((sides["averaged"].kernel() - w_start).norm()) / moved
                                          if moved > 0 else float("nan"))
    return {k: np.asarray(v) for k, v in rec.items()}


def _training(ctx: CaseContext, out: CaseOutput) -> None:
    p = ctx.params
    report = sorted(s for s in p["train_report_steps"] if 1 <= s <= p["train_steps"]) or [p["train_steps"]]
    rows = []
    for opt, lr in (("sgd", p["sgd_lr"]), ("adam", p["adam_lr"])):
        ctx.progress(f"training with {opt}")
        rec = _train(ctx, opt, lr)
        steps = list(range(1, p["train_steps"] + 1))
        out.add_line_plot(f"train_{opt}", f"{opt.upper()} lr={lr:g}: distance of the kernel from the float64 "
                          "shared-kernel trajectory", "step", "‖w − w_fp64‖ / ‖w_fp64 − w₀‖",
                          [{"label": label, "x": [s for s, v in zip(steps, rec[f'{a}.err']) if v > 0],
                            "y": [float(v) for v in rec[f"{a}.err"] if v > 0],
                            "style": "dashed" if a == "summed" else ""}
                           for a, label in _APPROACHES.items()], xscale="log", yscale="log",
                          note="Relative to how far the exact trajectory has moved from the start; exact zeros "
                               "are left out of the log axis. (b) is dashed: where it hides (a), the two "
                               "trajectories are the same.")
        for k in report:
            i = k - 1
            row = [f"{opt.upper()} lr={lr:g}", k]
            for a in _APPROACHES:
                out.fact(f"train.{opt}.{a}.rel_err_k{k}", float(rec[f"{a}.err"][i]))
                row.append(float(rec[f"{a}.err"][i]))
            row += [float(rec["ref.loss"][i]), float(rec["shared.loss"][i]), float(rec["averaged.loss"][i])]
            rows.append(row)
        last = p["train_steps"] - 1
        for a in _APPROACHES:
            out.fact(f"train.{opt}.{a}.rel_err_final", float(rec[f"{a}.err"][last]))
        out.fact(f"train.{opt}.averaged.step_ratio_1", float(rec["averaged.step_ratio"][0]))
        out.fact(f"train.{opt}.averaged_over_shared_loss_final",
                 float(rec["averaged.loss"][last] / rec["shared.loss"][last]) if rec["shared.loss"][last] > 0
                 else None)
    out.fact("train.channels", p["channels"])
    out.add_table("Training the shared kernel: distance from the float64 trajectory after k steps",
                  ["optimizer", "k", *(f"{label}" for label in _APPROACHES.values()), "loss (float64)",
                   "loss (a)", "loss (averaged)"], rows,
                  note=f"Distances are ‖w − w_fp64‖ / ‖w_fp64 − w₀‖ after k steps on one fixed batch "
                       f"({p['train_batch']}, {p['channels']}, {p['train_size']}, {p['train_size']}) whose target "
                       "comes from a known kernel. (a) and (b)-summed should sit at rounding level; averaging "
                       f"the copies makes an SGD step {p['channels']}× too small (C = {p['channels']} channels) and "
                       "replaces Adam's step by the mean of per-copy Adam steps.")


# ----------------------------------------------------------------------------------------------- timing

def _timing(ctx: CaseContext, out: CaseOutput) -> None:
    x, w, g = _inputs(ctx)
    w_rep = w.repeat(x.shape[1], 1, 1, 1)
    leaves = {"shared": w.clone().requires_grad_(True), "repeated": w_rep.clone().requires_grad_(True),
              "loop": w.clone().requires_grad_(True)}
    fns = {"shared": _shared, "repeated": _repeated, "loop": _loop}

    def forward(name: str) -> Callable[[], Any]:
        def run() -> Any:
            with torch.no_grad():
                return fns[name](x, leaves[name])
        return run

    def train_step(name: str) -> Callable[[], Any]:
        def run() -> Any:
            leaf = leaves[name]
            leaf.grad = None
            (fns[name](x, leaf) * g).sum().backward()
            # (b) is only correct with its gradients summed over the groups: that is part of its cost.
            return leaf.grad.sum(0, keepdim=True) if name == "repeated" else leaf.grad
        return run

    for what, make in (("forward", forward), ("forward+backward", train_step)):
        time_sides(ctx, out, what, {n: (_SIDES[n], make(n)) for n in fns}, "shared")



FACTS = schema(
    EXPLAIN_FACTS,
    comparison_facts("fwd.*"), comparison_facts("grad.*"),
    FactSpec("train.channels", NUMBER), FactSpec("train.*.*.*", NUMBER),
    FactSpec("train.*.averaged_over_shared_loss_final", NUMBER),
    timing_facts(),
)


@register("shared_kernel_conv", "One 3x3 kernel applied to every channel: expand + grouped conv vs a repeated "
          "grouped weight vs a loop of single-channel convs; forward, summed gradients, the 'average the "
          "copies' training mistake, timing.", facts=FACTS, defaults=DEFAULTS)
def run(ctx: CaseContext) -> CaseOutput:
    _check_supported(ctx)
    out = ctx.output()
    ctx.progress("forward and gradients vs float64")
    _equivalence(ctx, out)
    _why(ctx, out)
    if ctx.params["train_steps"] > 0:
        _training(ctx, out)
    if ctx.timing_enabled:
        _timing(ctx, out)
    return out
