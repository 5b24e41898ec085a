"""One 3x3 kernel shared by every channel: three ways to write it, their gradients, and how to train it.

Source: a Q&A thread asking how to apply one learnable 3x3 kernel to every channel of an image. The case first
runs the thread's code as published (``PUBLISHED``, facts ``published.*``; the claims are judged on it): the
question's ``torch.manual_seed(0)``, ``x = torch.rand(1, 3, 3, 3)``, ``nn.Conv2d(1, 1, 3)`` with its bias and the
grouped conv holding the repeated weight, then the answer's ``SharedKernelConv2d`` (reconstructed: not in the
retrieved text) and its ``.mean().backward()``; and, on that example, one SGD and one Adam step of the shared kernel
against "average the repeated weights after the step". Its own variants follow, on the case's input. Three
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

from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from reportgen.facts import (BOOL, EXPLAIN_FACTS, LIST, NUMBER, FactSpec, comparison_facts, facts,
                             schema, timing_facts)
from reportgen.cases import CaseContext, CaseOutput, CaseSkipped, register
from reportgen.errors import UsageError
from reportgen.engine import SideOutput, judge, time_sides
from reportgen.measure.numerics import gamma
from reportgen.published import Published, PublishedRun, run_published

DEFAULTS: dict[str, Any] = {
    # learning rate of the one SGD / Adam step on the published example (the thread names no optimizer)
    "published_step_lr": 0.1,
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


# ----------------------------------------------------------------------------------------------- as published

_THREAD = ("PyTorch forums Q&A \"Grouped Convolution for Repeated Convolution Backprop\" (Syzygianinfern0, "
           "2021-08-18), text as archived in https://huggingface.co/datasets/nvidia/Nemotron-CC-Math-v1")
#: what the question printed for conv(x) and kernel(first), kernel(second), kernel(third)
_POST_PRINTED = (-1.0085, -1.0068, -1.0451)

# The question's example as published (its REPL lines `>>> conv(x)` written as prints), then the answer's
# SharedKernelConv2d and its .mean().backward(): every line marked '# reconstructed' is not the thread's text
# (the answer's code was not in the retrieved archive; bench/published/README.md).
_SNIPPET = '''\
import torch
import torch.nn as nn
import torch.nn.functional as F  # reconstructed

torch.manual_seed(0)
x = torch.rand(1, 3, 3, 3)
first = x[:, 0:1, ...]
second = x[:, 1:2, ...]
third = x[:, 2:3, ...]
kernel = nn.Conv2d(1, 1, 3)
conv = nn.Conv2d(3, 3, 3, groups=3)
conv.weight.data = kernel.weight.data.repeat(3, 1, 1, 1)
conv.bias.data = kernel.bias.data.repeat(3)
print(conv(x))
print(kernel(first), kernel(second), kernel(third))


class SharedKernelConv2d(nn.Module):  # reconstructed
    def __init__(self, channels, kernel):  # reconstructed
        super().__init__()  # reconstructed
        self.channels = channels  # reconstructed
        self.weight = nn.Parameter(kernel.weight.detach().clone())  # reconstructed
        self.bias = nn.Parameter(kernel.bias.detach().clone())  # reconstructed

    def forward(self, x):  # reconstructed
        return F.conv2d(x, self.weight.expand(self.channels, -1, -1, -1),  # reconstructed
                        self.bias.expand(self.channels), groups=self.channels)  # reconstructed


shared = SharedKernelConv2d(3, kernel)  # reconstructed
shared(x).mean().backward()  # reconstructed
conv(x).mean().backward()  # reconstructed
print(shared.weight.grad, conv.weight.grad.sum(0, keepdim=True))  # reconstructed
'''

PUBLISHED = Published(
    source=_THREAD,
    title="PyTorch forums: \"Grouped Convolution for Repeated Convolution Backprop\" (the question's example, "
          "the answer's shared kernel)",
    snippet=_SNIPPET,
    edits=("the question's REPL lines '>>> conv(x)' and '>>> kernel(first), kernel(second), kernel(third)' are "
           "written as print(...)",
           "every line marked '# reconstructed' is not the thread's text: the answer's SharedKernelConv2d and its "
           "use were not in the retrieved archive and are rebuilt from its description (one kernel and bias "
           "applied to every channel through weight.expand(C, -1, -1, -1), groups=C, then .mean().backward()); "
           "the repeated conv's own .mean().backward(), to compare its gradients summed over the groups with the "
           "shared kernel's (the self-answer: kernel.weight.grad = conv.weight.grad.sum(0, keepdim=True)), is "
           "ours"),
    departures=("'averaging the weights is not right' is judged by one optimizer step (SGD and Adam, lr "
                "published_step_lr) on the published example and loss, from kernel's values: the averaged repeated "
                "weights against the shared kernel's step (the thread names no optimizer: ours)",
                "the variants below use their own input (the case seed): a shared 3x3 kernel without bias on "
                "(batch, channels, height, width) with padding 1, a loop of single-channel convs as a third "
                "formulation, an upstream gradient g (loss sum(y·g)) rather than .mean(), checked against float64 "
                "and the rounding bound",
                "training variant: many SGD/Adam steps of an MSE problem to a known kernel on another input, "
                "against the float64 trajectory; timing of the three formulations"),
    outputs=("x", "first", "second", "third", "kernel", "conv", "SharedKernelConv2d", "shared"),
    seed_call="torch.manual_seed(0)",
)


def _published(ctx: CaseContext, out: CaseOutput) -> PublishedRun:
    """Run the question's example and the answer as published (CPU float32 code, as published, whatever the case's
    device and dtype) and publish ``published.*``, the facts the claims are judged on. A robustness rerun runs
    it on ``ctx.seed`` (its torch.manual_seed(0) replaced)."""
    pub = PUBLISHED.with_seed(ctx.seed) if getattr(ctx, "robustness_run", False) else PUBLISHED
    ctx.progress(f"published example: {pub.seed_call}")
    run = run_published(pub)
    out.extra["published"] = run.section()
    x, kernel, conv, shared = run["x"], run["kernel"], run["conv"], run["shared"]
    with torch.no_grad():
        grouped = conv(x)
        single = torch.cat([kernel(run[n]) for n in ("first", "second", "third")], dim=1)
        # both are 9-term dot products plus the bias: each within gamma_10 (|x|*|w| + |b|) of the exact value
        scale = F.conv2d(x.double().abs(), kernel.weight.double().abs().expand(x.shape[1], -1, -1, -1),
                         kernel.bias.double().abs().expand(x.shape[1]), groups=x.shape[1])
    fwd_bound = 2 * gamma(10, torch.float32) * scale
    conv_x = [float(v) for v in grouped.flatten()]
    out.fact("published.conv_x", conv_x)
    out.fact("published.conv_x_matches_post", len(conv_x) == len(_POST_PRINTED) and
             all(round(v, 4) == p for v, p in zip(conv_x, _POST_PRINTED)))
    _pub_diff(out, "published.grouped_vs_single", grouped, single, fwd_bound)
    # The answer: the shared kernel's gradient is the repeated weight's gradients summed over the groups.
    summed, bias_summed = conv.weight.grad.sum(0, keepdim=True), conv.bias.grad.sum(0, keepdim=True)
    # Each element of either is a sum of the C*H'*W' products dL/dy * x (dL/dy = 1/numel for .mean()), in any
    # order: within gamma_(n+1) of the exact sum of |dL/dy| |x| (the +1 for the rounded 1/numel), per side.
    n = grouped.numel()
    w_abs = torch.zeros_like(kernel.weight, dtype=torch.float64, requires_grad=True)
    F.conv2d(x.double().abs(), w_abs.expand(x.shape[1], -1, -1, -1), groups=x.shape[1]).mean().backward()
    _pub_diff(out, "published.grad.shared_vs_summed", shared.weight.grad, summed,
              2 * gamma(n + 1, torch.float32) * w_abs.grad)
    _pub_diff(out, "published.grad.bias_shared_vs_summed", shared.bias.grad, bias_summed,
              2 * gamma(n + 1, torch.float32) * torch.ones(1, dtype=torch.float64))
    for opt in ("sgd", "adam"):
        _published_step(ctx, out, run, opt)
    return run


def _pub_diff(out: CaseOutput, key: str, a: torch.Tensor, b: torch.Tensor, bound: torch.Tensor) -> None:
    d = (a.detach().double() - b.detach().double()).abs()
    out.fact(f"{key}.bitwise_equal", bool(torch.equal(a.detach(), b.detach())))
    out.fact(f"{key}.max_abs", float(d.max()))
    out.fact(f"{key}.max_normalised", float((d / bound.expand_as(d)).max()))


def _published_step(ctx: CaseContext, out: CaseOutput, run: PublishedRun, opt: str) -> None:
    """One optimizer step on the published example and loss: the shared kernel's own step, and the repeated
    weights stepped (with their per-copy gradients) then averaged, as the question proposes."""
    x, kernel, channels = run["x"], run["kernel"], run["x"].shape[1]
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[opt]
    lr = ctx.params["published_step_lr"]
    shared = run["SharedKernelConv2d"](channels, kernel)
    # The repeated conv as the question builds it (weights and bias copied from kernel), as plain leaves: an
    # nn.Conv2d here would draw its own default init from the global RNG only to be overwritten.
    w_rep = kernel.weight.detach().repeat(channels, 1, 1, 1).clone().requires_grad_(True)
    b_rep = kernel.bias.detach().repeat(channels).clone().requires_grad_(True)
    for params, forward in (([shared.weight, shared.bias], lambda: shared(x)),
                            ([w_rep, b_rep], lambda: F.conv2d(x, w_rep, b_rep, groups=channels))):
        o = cls(params, lr=lr)
        o.zero_grad()
        forward().mean().backward()
        o.step()
    with torch.no_grad():
        averaged = w_rep.mean(0).unsqueeze(0)
        off = float((averaged.double() - shared.weight.double()).abs().max())
        step = float((shared.weight.double() - kernel.weight.double()).abs().max())
    out.fact(f"published.step.{opt}.averaged_minus_shared_max_abs", off)
    out.fact(f"published.step.{opt}.shared_step_max_abs", step)
    out.fact(f"published.step.{opt}.averaged_off", off / step if step > 0 else None)


def _published_table(out: CaseOutput) -> None:
    f = out.facts
    rows = [["grouped conv(x) vs kernel on each channel", f["published.grouped_vs_single.bitwise_equal"],
             f["published.grouped_vs_single.max_abs"], f["published.grouped_vs_single.max_normalised"]],
            ["weight gradient: shared kernel vs repeated, summed over groups",
             f["published.grad.shared_vs_summed.bitwise_equal"], f["published.grad.shared_vs_summed.max_abs"],
             f["published.grad.shared_vs_summed.max_normalised"]],
            ["bias gradient: shared vs repeated, summed", f["published.grad.bias_shared_vs_summed.bitwise_equal"],
             f["published.grad.bias_shared_vs_summed.max_abs"],
             f["published.grad.bias_shared_vs_summed.max_normalised"]]]
    # the note stays here: which sentence it says depends on the measured values
    out.add_table(id="published", rows=rows,
                  note="conv(x) = " + ", ".join(f"{v:.4f}" for v in f["published.conv_x"]) +
                       (" (as the question printed)" if f["published.conv_x_matches_post"] else
                        " (the question printed " + ", ".join(f"{v:.4f}" for v in _POST_PRINTED) + ")") +
                       ". Bounds: 2·γ_10·(|x|·|w| + |b|) for the forward, 2·γ_(n+1)·Σ|∂L/∂y||x| for the gradients.")
    out.add_table(id="published_step",
                  rows=[[opt.upper(), f[f"published.step.{opt}.averaged_minus_shared_max_abs"],
                    f[f"published.step.{opt}.shared_step_max_abs"], f[f"published.step.{opt}.averaged_off"]]
                        for opt in ("sgd", "adam")])


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
        out.add_line_plot(f"train_{opt}", meta={"optimizer": opt.upper(), "lr": lr},
                          series=[{"label": label, "x": [s for s, v in zip(steps, rec[f'{a}.err']) if v > 0],
                            "y": [float(v) for v in rec[f"{a}.err"] if v > 0],
                            "style": "dashed" if a == "summed" else ""}
                           for a, label in _APPROACHES.items()], xscale="log", yscale="log")
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
    out.add_table(id="train", rows=rows)


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
    FactSpec("published.conv_x", LIST), FactSpec("published.conv_x_matches_post", BOOL),
    FactSpec("published.**.bitwise_equal", BOOL),
    facts("published.**", ["max_abs", "max_normalised"], NUMBER),
    facts("published.step.*", ["averaged_minus_shared_max_abs", "shared_step_max_abs", "averaged_off"], NUMBER),
    comparison_facts("fwd.*"), comparison_facts("grad.*"),
    FactSpec("train.channels", NUMBER), FactSpec("train.*.*.*", NUMBER),
    FactSpec("train.*.averaged_over_shared_loss_final", NUMBER),
    timing_facts(),
)


def _validate(p: Mapping[str, Any]) -> None:
    # A report step past the last training step used to be dropped silently (the table just lacked the row).
    late = [s for s in p["train_report_steps"] if s > p["train_steps"]]
    if late and p["train_steps"]:  # train_steps 0 switches training off: nothing is reported
        raise UsageError(f"shared_kernel_conv: params.train_report_steps: {late[0]} is beyond train_steps "
                         f"({p['train_steps']})")
    lr = p["published_step_lr"]
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
        raise UsageError(f"shared_kernel_conv: params.published_step_lr: expected a positive learning rate, "
                         f"got {lr!r}")


@register("shared_kernel_conv", "One 3x3 kernel applied to every channel: the thread's example run as published "
          "first (grouped conv vs the kernel per channel, the shared kernel's gradient vs the summed repeated one, "
          "one SGD/Adam step vs averaging the copies); then expand + grouped conv vs a repeated grouped weight vs "
          "a loop of single-channel convs; forward, summed gradients, the 'average the copies' training mistake, "
          "timing.", facts=FACTS, defaults=DEFAULTS,
          validate=_validate)
def run(ctx: CaseContext) -> CaseOutput:
    _check_supported(ctx)
    out = ctx.output()
    _published(ctx, out)
    _published_table(out)
    if getattr(ctx, "robustness_run", False):  # the claims read only the published example's facts
        return out
    ctx.progress("forward and gradients vs float64 (variant)")
    _equivalence(ctx, out)
    _why(ctx, out)
    if ctx.params["train_steps"] > 0:
        _training(ctx, out)
    if ctx.timing_enabled:
        _timing(ctx, out)
    return out
