"""Conv1d(k=1) vs Linear sharing weights: forward, gradients, growth with depth and width, timing.

Source: the answer to Stack Overflow question 55576314 ("Conv1d with kernel_size=1 vs Linear layer"). Its code runs
first, as text (``published_protocol``: the answer sets no seed, so the case seed is added), and the forward claims
are judged on it (facts ``published.*``). Growth with depth, which the answer asserts without code, is judged on the
stack its code implies: default-initialised layers built as the snippet builds one (``growth.depth.*``, absolute and
relative to the output's magnitude); the variance-preserving stack is a labelled variant (``growth.vp.depth.*``).
The forward/gradient comparison on the case's own draw (``fwd.*``, ``grad.*``) is a variant too.

Each side is judged against a float64 reference computed from the same rounded inputs, in units of the
inner-product error bound gamma_n * (|x|.|w| + |b|): "within rounding" means the kernel is as accurate as any
correct fp kernel can be required to be, so a difference between the two sides is a choice of summation order, not
a bug.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reportgen.facts import (BOOL, EXPLAIN_FACTS, NUMBER, STR, FactSpec, comparison_facts, facts,
                             schema, timing_facts)
from reportgen.cases import CaseContext, CaseOutput, CaseSkipped, register
from reportgen.errors import UsageError
from reportgen.engine import SideOutput, judge, time_sides
from reportgen.measure.numerics import gamma, log10_abs_histogram, matmul_bound
from reportgen.measure.settings import capture_settings, reduced_precision_paths
from reportgen.measure.peak import tensor_bytes
from reportgen.measure.regime import WARM_ALLOCATOR
from reportgen.measure.timing import ratio_summary
from reportgen.published import Published, run_published

DEFAULTS: dict[str, Any] = {
    "batch": 128,
    "length": 256,
    "in_features": 8,
    "out_features": 32,
    "backward": True,
    "growth_depths": [1, 2, 4, 8, 16, 32],
    "growth_width": 32,
    "growth_in_features": [8, 32, 128, 512, 1024, 4096],
    "growth_rows": 1024,
    "histogram_bins": 40,
    # fresh processes per allocator regime timing the answer's %%timeit (each about 6-8 s): with glibc's defaults
    # fresh processes disagree by several times, so one process says little
    "published_timing_processes": 5,
}


def _uniform(shape: tuple[int, ...], bound: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound


def _pair(k: int, o: int, dtype: torch.dtype, device: torch.device, gen: torch.Generator,
          scale: float | None = None) -> tuple[nn.Linear, nn.Conv1d]:
    """A Linear and a Conv1d(kernel_size=1) holding bit-identical parameters.

    Parameters are drawn from a seeded generator (nn's default U(-1/sqrt(k), 1/sqrt(k)) unless ``scale``), so the
    global RNG is untouched and every device gets the same numbers.
    """
    w = _uniform((o, k), scale if scale is not None else 1 / math.sqrt(k), gen)
    b = _uniform((o,), 1 / math.sqrt(k), gen)
    lin = nn.Linear(k, o).to(device=device, dtype=dtype)
    conv = nn.Conv1d(k, o, 1).to(device=device, dtype=dtype)
    with torch.no_grad():
        lin.weight.copy_(w)
        lin.bias.copy_(b)
        conv.weight.copy_(lin.weight.unsqueeze(-1))
        conv.bias.copy_(lin.bias)
    return lin, conv


def _pair_and_input(ctx: CaseContext, offset: int) -> tuple[nn.Linear, nn.Conv1d, torch.Tensor, torch.Generator]:
    """The case's Linear/Conv1d pair and an input (batch, length, in_features), drawn in that order from
    ``ctx.generator(offset)``; the generator is returned for further draws (targets)."""
    p = ctx.params
    gen = ctx.generator(offset)
    lin, conv = _pair(p["in_features"], p["out_features"], ctx.dtype, ctx.device, gen)
    return lin, conv, ctx.randn(p["batch"], p["length"], p["in_features"], gen=gen), gen


def _conv_forward(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    # (N, L, C) -> (N, C, L) for the conv and back, as in the thread.
    return conv(x.permute(0, 2, 1)).permute(0, 2, 1)


def _check_dtype_supported(device: torch.device, dtype: torch.dtype) -> None:
    try:
        x = torch.ones(1, 2, 3, device=device, dtype=dtype, requires_grad=True)
        conv = nn.Conv1d(2, 2, 1).to(device=device, dtype=dtype)
        (conv(x).sum() + F.linear(x.transpose(1, 2), conv.weight[..., 0]).sum()).backward()
    except (RuntimeError, NotImplementedError) as exc:
        raise CaseSkipped(f"{dtype} Conv1d/Linear not supported on {device}: {str(exc).splitlines()[0]}") from None


_FACT_KEYS = ("verdict", "max_abs", "max_normalised", "max_rel", "max_ulp", "bitwise_equal_fraction", "cosine",
              "assert_close")


def _compare_three(out: CaseOutput, group: str, lin: torch.Tensor, conv: torch.Tensor, ref: torch.Tensor,
                   bound_lin: torch.Tensor, bound_conv: torch.Tensor, desc: str, factor: float) -> None:
    """Linear vs reference, Conv1d vs reference, Linear vs Conv1d (allowed: the sum of both bounds)."""
    judge(out, group, [SideOutput("linear", "Linear", lin, bound_lin), SideOutput("conv1d", "Conv1d", conv, bound_conv)],
          ref, desc=desc, factor=factor, keys=_FACT_KEYS)


def _forward_backward(ctx: CaseContext, out: CaseOutput) -> dict[str, torch.Tensor]:
    p, dtype = ctx.params, ctx.dtype
    n, length, k, o = p["batch"], p["length"], p["in_features"], p["out_features"]
    lin, conv, x, gen = _pair_and_input(ctx, 0)
    target = ctx.randn(n, length, o, gen=gen)

    x_lin = x.clone().requires_grad_(True)
    x_conv = x.clone().requires_grad_(True)
    y_lin = lin(x_lin)
    y_conv = _conv_forward(conv, x_conv)

    # float64 reference from the same rounded values, with autograd for the reference gradients.
    w64 = lin.weight.detach().double().requires_grad_(True)
    b64 = lin.bias.detach().double().requires_grad_(True)
    x64 = x.detach().double().requires_grad_(True)
    y64 = F.linear(x64, w64, b64)

    fwd_bound = matmul_bound(x.detach(), lin.weight.detach().t(), dtype, bias=lin.bias.detach())
    _compare_three(out, "fwd", y_lin.detach(), y_conv.detach(), y64.detach(), fwd_bound, fwd_bound,
                   f"γ_{k + 1}·(|x|ᵀ|w| + |b|), u = {_u_text(dtype)}", ctx.bound_factor)
    diffs = {"forward": (y_lin - y_conv).detach()}
    if not p["backward"]:
        return diffs

    y_lin.retain_grad()
    y_conv.retain_grad()
    F.mse_loss(y_lin, target).backward()
    F.mse_loss(y_conv, target).backward()
    F.mse_loss(y64, target.double()).backward()
    g64 = (2.0 / y64.numel()) * (y64.detach() - target.double())  # dL/dy of the float64 MSE
    rows = n * length

    def grad_bounds(g: torch.Tensor) -> dict[str, torch.Tensor]:
        # |fl(sum x*g_side) - sum x*g64| <= gamma_n |x|.|g_side| + |x|.|g_side - g64|  (triangle inequality):
        # the rounding of the backward kernel plus the forward error that reached it through dL/dy.
        g2 = g.detach().reshape(rows, o)
        dg = (g2.double() - g64.reshape(rows, o)).abs()
        x2 = x.detach().reshape(rows, k).double().abs()
        w = lin.weight.detach().double().abs()
        return {
            "weight": gamma(rows, dtype) * (g2.double().abs().t() @ x2) + dg.t() @ x2,
            "bias": gamma(rows, dtype) * g2.double().abs().sum(0) + dg.sum(0),
            "input": (gamma(o, dtype) * (g2.double().abs() @ w) + dg @ w).reshape(n, length, k),
        }

    bl, bc = grad_bounds(y_lin.grad), grad_bounds(y_conv.grad)
    sides = {
        "weight": (lin.weight.grad, conv.weight.grad.squeeze(-1), w64.grad, f"γ_{rows}·|g|ᵀ|x| + |Δg|ᵀ|x|"),
        "bias": (lin.bias.grad, conv.bias.grad, b64.grad, f"γ_{rows}·Σ|g| + Σ|Δg|"),
        "input": (x_lin.grad, x_conv.grad, x64.grad, f"γ_{o}·|g||W| + |Δg||W|"),
    }
    for name, (gl, gc, gref, desc) in sides.items():
        _compare_three(out, f"grad.{name}", gl, gc, gref, bl[name], bc[name], desc, ctx.bound_factor)
        diffs[f"{name} gradient"] = (gl - gc).detach()
    return diffs


def _u_text(dtype: torch.dtype) -> str:
    return {torch.float32: "2⁻²⁴", torch.float64: "2⁻⁵³", torch.float16: "2⁻¹¹", torch.bfloat16: "2⁻⁸"}[dtype]


def _histograms(out: CaseOutput, diffs: dict[str, torch.Tensor], bins: int) -> None:
    hists = []
    for label, d in diffs.items():
        h = log10_abs_histogram(d, bins=bins)
        h["label"] = label
        hists.append(h)
        out.fact(f"hist.{label.split()[0]}.zero_fraction", h["zeros"] / h["total"] if h["total"] else None)
    out.add_histogram("diff_hist", hists=hists)


def _stack_errors(layers: list[tuple[nn.Linear, nn.Conv1d]], x: torch.Tensor, depths: list[int],
                  dtype: torch.dtype, conv_input: torch.Tensor | None = None,
                  rigorous: bool = True) -> dict[str, list[float]]:
    """Run both stacks layer by layer next to a float64 reference, with two scales for the error.

    ``worst``: the rigorous bound, layer l: gamma_{w+1}(|W||x_hat| + |b|) + |W| worst_{l-1} for each side (x_hat
    the side's own rounded input). It grows like the norm of |W| to the power L, so it soon says nothing.
    ``accum``: the rounding each layer adds, summed over layers (sum of gamma_{w+1} max(|W||x_hat| + |b|)), the
    error scale if errors pass through layers with gain ~1, as the variance-preserving init makes them on average.
    ``out``: max |Linear stack output|, ``rel``: max |Linear − Conv1d| / out. ``conv_input``: the Conv1d stack's
    input, (N, C, L) (default: ``x`` permuted, a view). ``rigorous=False`` leaves ``worst`` out (empty): two
    float64 products per layer that the default-init stack, rebuilt for every depth, can spare.
    """
    xl, xc, x64 = x, (x.permute(0, 2, 1) if conv_input is None else conv_input), x.double()
    worst_l = worst_c = torch.zeros_like(x64)
    accum = 0.0
    rec: dict[str, list[float]] = {k: [] for k in ("lin", "conv", "diff", "worst", "accum", "norm", "out", "rel")}
    for depth, (lin, conv) in enumerate(layers, start=1):
        w64, b64 = lin.weight.double(), lin.bias.double()
        local_l = matmul_bound(xl, lin.weight.t(), dtype, bias=lin.bias)
        local_c = matmul_bound(xc.permute(0, 2, 1), lin.weight.t(), dtype, bias=lin.bias)
        if rigorous:
            worst_l = local_l + worst_l @ w64.abs().t()
            worst_c = local_c + worst_c @ w64.abs().t()
        accum += float(local_l.max() + local_c.max())
        xl, xc, x64 = lin(xl), conv(xc), F.linear(x64, w64, b64)
        if depth in depths:
            yc = xc.permute(0, 2, 1)
            diff = float((xl.double() - yc.double()).abs().max())
            rec["lin"].append(float((xl.double() - x64).abs().max()))
            rec["conv"].append(float((yc.double() - x64).abs().max()))
            rec["diff"].append(diff)
            if rigorous:
                rec["worst"].append(float((worst_l + worst_c).max()))
            rec["accum"].append(accum)
            rec["norm"].append(diff / accum if accum > 0 else 0.0)
            top = float(xl.double().abs().max())
            rec["out"].append(top)
            rec["rel"].append(diff / top if top > 0 else 0.0)
    return rec


def _ranks(values: list[float]) -> np.ndarray:
    """Ranks with ties sharing their average rank (so equal values carry no trend)."""
    v = np.asarray(values, dtype=float)
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v))
    ranks[order] = np.arange(len(v), dtype=float)
    _, inverse = np.unique(v, return_inverse=True)
    return np.array([ranks[inverse == i].mean() for i in inverse])


def _spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman rank correlation; None when it is undefined (fewer than 3 points, or one side constant)."""
    if len(x) < 3:
        return None
    rx, ry = _ranks(x), _ranks(y)
    return float(np.corrcoef(rx, ry)[0, 1]) if np.std(rx) > 0 and np.std(ry) > 0 else None


def _growth_batches(p: Mapping[str, Any]) -> int:
    """The growth inputs' rows, split into the case's batch: ATen picks Conv1d's backend from the shapes (on CPU a
    batch of 1 with a small input goes to im2col + the same MKL GEMM as Linear, a batch > 1 to oneDNN), and the
    growth must exercise the backend the forward comparison did, not another. At least 2 positions per sample:
    with a length of 1 oneDNN's 1x1 convolution reduces like Linear's GEMM and the two agree bit for bit."""
    return max(1, min(p["batch"], p["growth_rows"] // 2))


def _validate(p: Mapping[str, Any]) -> None:
    for key in ("growth_depths", "growth_in_features"):
        if not p[key]:
            raise UsageError(f"linear_vs_conv1d: params.{key}: expected a non-empty list of positive integers")
    n = p["published_timing_processes"]
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 50:
        raise UsageError(f"linear_vs_conv1d: params.published_timing_processes: expected an integer from 1 to 50, "
                         f"got {n!r}")
    if p["growth_rows"] < 2:
        raise UsageError(f"linear_vs_conv1d: params.growth_rows: {p['growth_rows']} leaves no room for a sequence "
                         "(at least 2 rows)")


def _growth_path(ctx: CaseContext, out: CaseOutput) -> None:
    """Fact ``growth.conv_path_as_forward`` (after _why, whose kernel section profiled the forward's Conv1d): True
    when the growth stack's Conv1d ran the ATen op the forward comparison's Conv1d ran; missing (not False)
    otherwise, so a claim on growth is not judged on another kernel. A robustness rerun has no kernel section:
    there the forward's Conv1d is profiled once for its op alone, so the growth claims are judged on every seed."""
    growth, forward = out.facts.get("growth.conv_op"), out.facts.get("kernels.conv1d.op")
    if forward is None and getattr(ctx, "robustness_run", False):
        _, conv, x, _ = _pair_and_input(ctx, 0)
        with torch.no_grad():
            from reportgen.measure.kernels import dispatched_op

            forward = dispatched_op(lambda: _conv_forward(conv, x), ctx.device)
    out.fact("forward.conv_op", forward)
    out.fact("growth.conv_path_as_forward", True if growth and growth == forward else None)
    if growth != forward:
        out.note(f"The growth stacks' Conv1d ran {growth or 'an unknown op'}, the forward comparison's "
                 f"{forward or 'an unknown op'}: the growth does not show the forward's kernel, and claims on it "
                 "are not measurable here.")


def _depth_facts(out: CaseOutput, prefix: str, depths: list[int], rec: dict[str, list[float]]) -> None:
    """Growth of the absolute difference and of the difference relative to the output's magnitude."""
    for name, series in (("diff", rec["diff"]), ("rel", rec["rel"])):
        out.fact(f"{prefix}.{name}_first", series[0])
        out.fact(f"{prefix}.{name}_last", series[-1])
        out.fact(f"{prefix}.{name}_ratio_last_first", series[-1] / series[0] if series[0] > 0 else None)
    out.fact(f"{prefix}.spearman", _spearman(depths, rec["diff"]))
    out.fact(f"{prefix}.rel_spearman", _spearman(depths, rec["rel"]))
    out.fact(f"{prefix}.max_normalised", max(rec["norm"]))
    out.fact(f"{prefix}.out_first", rec["out"][0])
    out.fact(f"{prefix}.out_last", rec["out"][-1])


def _depth_report(out: CaseOutput, id: str, title: str, depths: list[int], rec: dict[str, list[float]],
                  meta: dict[str, int] | None = None) -> None:
    """Plot ``id`` and table ``id + "_table"``; their text is the views' (reportgen.render.views). The table keeps
    ``title`` stored as well: the case's tests find the two depth tables by it."""
    worst = bool(rec["worst"])  # the rigorous bound, where it was computed
    out.add_line_plot(id, series=[
        {"label": "Linear vs fp64", "x": depths, "y": rec["lin"], "style": ""},
        {"label": "Conv1d vs fp64", "x": depths, "y": rec["conv"], "style": ""},
        {"label": "Linear vs Conv1d", "x": depths, "y": rec["diff"], "style": ""},
        {"label": "max |output|", "x": depths, "y": rec["out"], "style": "dashed"},
        {"label": "per-layer rounding, accumulated", "x": depths, "y": rec["accum"], "style": "bound"}] +
        ([{"label": "rigorous worst case", "x": depths, "y": rec["worst"], "style": "dashed"}] if worst else []),
        xscale="log", yscale="log", meta=meta)
    cols = [rec["out"], rec["lin"], rec["conv"], rec["diff"], rec["rel"], rec["accum"], rec["norm"]]
    # The headings are kept here: the rigorous-bound column is there only where that bound was computed.
    out.add_table(title, ["depth", "max |output|", "max |Linear − fp64|", "max |Conv1d − fp64|",
                          "max |Linear − Conv1d|", "max |Δ| / max |output|", "accumulated rounding",
                          "max |Δ| / accumulated"] + (["rigorous worst case"] if worst else []),
                  [list(r) for r in zip(depths, *cols, *([rec["worst"]] if worst else []))], id=f"{id}_table",
                  meta=meta)


def _default_stack(ctx: CaseContext, depth: int) -> tuple[list[tuple[nn.Linear, nn.Conv1d]], torch.Tensor]:
    """The stack the answer implies, built as its snippet builds one layer: under the seed, every Conv1d with its
    default initialisation (Conv1d(in_features, out, 1), then Conv1d(out, out, 1)), then each Linear (default
    init, drawing from the RNG as in the snippet) given its Conv1d's parameters, then the input; rebuilt per depth
    from the seed, so the input differs between depths as it would between a reader's runs."""
    p = ctx.params
    k, o = p["in_features"], p["out_features"]
    with ctx.global_rng(0):
        convs = [nn.Conv1d(k if i == 0 else o, o, 1) for i in range(depth)]
        lins = []
        for c in convs:
            lin = nn.Linear(c.in_channels, o)
            lin.weight = nn.Parameter(c.weight.squeeze(2))
            lin.bias = nn.Parameter(c.bias)
            lins.append(lin)
        tensor = torch.randn(p["batch"], p["length"], k)
    layers = [(lin.to(ctx.device, ctx.dtype), c.to(ctx.device, ctx.dtype)) for lin, c in zip(lins, convs)]
    return layers, tensor.to(ctx.device, ctx.dtype)


def _growth_default(ctx: CaseContext, out: CaseOutput) -> None:
    """Growth with depth on the default-initialised stack (the claim's facts ``growth.depth.*``)."""
    depths = sorted(ctx.params["growth_depths"])
    recs: dict[str, list[float]] = {}
    with torch.no_grad():
        for depth in depths:
            layers, x = _default_stack(ctx, depth)
            xc = x.permute(0, 2, 1).clone().contiguous()  # as the snippet's permuted_tensor
            if depth == depths[0]:
                from reportgen.measure.kernels import dispatched_op
                out.fact("growth.conv_op", dispatched_op(lambda: layers[0][1](xc), ctx.device))
            rec = _stack_errors(layers, x, [depth], ctx.dtype, conv_input=xc, rigorous=False)
            for key, v in rec.items():
                recs.setdefault(key, []).extend(v)
    _depth_facts(out, "growth.depth", depths, recs)
    p = ctx.params
    _depth_report(out, "growth_depth", f"Growth with depth, the stack the answer implies (default init, input "
                  f"({p['batch']}, {p['length']}, {p['in_features']}))", depths, recs)


def _growth(ctx: CaseContext, out: CaseOutput) -> None:
    """The variants: the variance-preserving stack (``growth.vp.depth.*``) and one layer of growing K."""
    p, dtype, dev = ctx.params, ctx.dtype, ctx.device
    rows, width = p["growth_rows"], p["growth_width"]
    nb = _growth_batches(p)
    gen = ctx.generator(1)
    with torch.no_grad():
        depths = sorted(p["growth_depths"])
        # sqrt(3/width) keeps activations' variance constant through the stack (as in a trained network),
        # so depth changes the number of roundings, not the magnitude of the numbers.
        layers = [_pair(width, width, dtype, dev, gen, scale=math.sqrt(3 / width)) for _ in range(depths[-1])]
        x = ctx.randn(nb, rows // nb, width, gen=gen)
        rec = _stack_errors(layers, x, depths, dtype)
        shape = f"{nb} × {rows // nb} rows"
        _depth_report(out, "growth_depth_vp", f"Variant: growth with depth, variance-preserving init (width-{width} "
                      f"layers, {shape})", depths, rec, meta={"batches": nb, "rows_per_batch": rows // nb})
        _depth_facts(out, "growth.vp.depth", depths, rec)

        ks = sorted(p["growth_in_features"])
        lin_err, conv_err, diff, bound = [], [], [], []
        for k in ks:
            lin, conv = _pair(k, p["out_features"], dtype, dev, gen)
            x = ctx.randn(nb, rows // nb, k, gen=gen)
            ref = F.linear(x.double(), lin.weight.double(), lin.bias.double())
            yl, yc = lin(x).double(), _conv_forward(conv, x).double()
            b = matmul_bound(x, lin.weight.t(), dtype, bias=lin.bias)
            lin_err.append(float((yl - ref).abs().max()))
            conv_err.append(float((yc - ref).abs().max()))
            diff.append(float((yl - yc).abs().max()))
            bound.append(float(2 * b.max()))
        out.add_line_plot("growth_k", series=[
                              {"label": "Linear vs fp64", "x": ks, "y": lin_err, "style": ""},
                              {"label": "Conv1d vs fp64", "x": ks, "y": conv_err, "style": ""},
                              {"label": "Linear vs Conv1d", "x": ks, "y": diff, "style": ""},
                              {"label": "bound (2·γ_{K+1}·max(|x|ᵀ|w|+|b|))", "x": ks, "y": bound,
                               "style": "bound"}], xscale="log", yscale="log",
                          meta={"batches": nb, "rows_per_batch": rows // nb})
        out.fact("growth.k.diff_max_over_bound", max(d / b for d, b in zip(diff, bound) if b > 0))
        out.fact("growth.k.spearman", _spearman(ks, diff))


def _timing(ctx: CaseContext, out: CaseOutput) -> None:
    p = ctx.params
    n, length, k, o = p["batch"], p["length"], p["in_features"], p["out_features"]
    lin, conv, x, gen = _pair_and_input(ctx, 2)
    xp = x.permute(0, 2, 1).contiguous()  # the conv's own layout: time the kernel, not the permute
    target = ctx.randn(n, length, o, gen=gen)
    flops = 2.0 * n * length * k * o

    def fwd_lin() -> Any:
        with torch.no_grad():
            return lin(x)

    def fwd_conv() -> Any:
        with torch.no_grad():
            return conv(xp)

    def step(module: nn.Module, inp: torch.Tensor, permute: bool) -> Any:
        def run() -> None:
            module.zero_grad(set_to_none=True)
            y = module(inp)
            F.mse_loss(y.permute(0, 2, 1) if permute else y, target).backward()
        return run

    # the least traffic: input, weight, bias and output once each (forward); the backward reads them again and
    # writes the input and weight gradients, about three times the forward's
    nbytes = float(tensor_bytes(x, lin.weight, lin.bias) + n * length * o * x.element_size())
    for name, fns, fl, nb in (("forward", (fwd_lin, fwd_conv), flops, nbytes),
                              ("forward+backward", (step(lin, x, False), step(conv, xp, True)), 3 * flops,
                               3 * nbytes)):
        by = time_sides(ctx, out, name, {"linear": ("Linear", fns[0]), "conv1d": ("Conv1d", fns[1])}, "linear",
                        flops={"linear": fl, "conv1d": fl}, bytes_moved={"linear": nb, "conv1d": nb})
        lin_t, conv_t = by["linear"], by["conv1d"]
        ratio = ratio_summary(conv_t, lin_t)
        noisy = " Noisy: at least one side's IQR/median is over the threshold." if lin_t.noisy or conv_t.noisy else ""
        out.note(f"{name}: Conv1d/Linear time ratio {ratio['ratio_of_medians']:.3g} (ratio of medians; per "
                 f"interleaved round {ratio['per_round_min']:.3g} to {ratio['per_round_max']:.3g}, "
                 f"{ratio['rounds']} rounds, {lin_t.num_threads} threads).{noisy}")


def _why(ctx: CaseContext, out: CaseOutput) -> None:
    """Which implementation each side ran, and whether each is reproducible (kernels + determinism sections)."""
    p, dtype = ctx.params, ctx.dtype
    n, length, k, o = p["batch"], p["length"], p["in_features"], p["out_features"]
    # the forward comparison's own pair and input (offset 0): the matrix's baseline cell is that comparison again
    lin, conv, x, _ = _pair_and_input(ctx, 0)
    sides = {"Linear": lambda: lin(x), "Conv1d": lambda: _conv_forward(conv, x)}
    bound = matmul_bound(x, lin.weight.detach().t(), dtype, bias=lin.bias.detach())
    # cuDNN logs only from a fresh process: the Conv1d side's call as code (same shapes, dtype and permuted,
    # non-contiguous input; kernels.cudnn_child_script adds the device and this process's settings).
    body = (f"conv = torch.nn.Conv1d({k}, {o}, 1).to(device, {dtype})\n"
            f"x = torch.randn({n}, {length}, {k}, device=device, dtype={dtype})\n"
            "conv(x.permute(0, 2, 1)); conv(x.permute(0, 2, 1))\n")
    out.explain(ctx, sides, bound, repeats=5, cudnn_bodies={"Conv1d": body})
    out.note(f"Kernels and determinism: the forward of Linear({k}, {o}) and Conv1d({k}, {o}, 1) on the forward "
             f"comparison's ({n}, {length}, {k}) input and weights; differences in units of γ_{k + 1}·(|x|ᵀ|w| + |b|) "
             "per side (summed over the two sides for a pair).")


def _reduced_precision(ctx: CaseContext, out: CaseOutput) -> None:
    """Whether every side computed at its dtype's full precision, for claims that would blame Conv1d vs Linear for
    a difference outside the rounding bound: a lower-precision path the settings enable for float32 (TF32 on an
    Ampere+ GPU, BF16/TF32 in oneDNN) explains such a difference by itself.

    ``precision.reduced_used``: False when no path is enabled, or (CUDA) every profiled kernel's name says full
    fp32; True when a kernel name says TF32; None when a path is enabled and the names do not tell (always so on
    CPU, where oneDNN's implementation names do not carry the math mode). ``precision.full`` is True only
    when it is False, else None (unknown): a rule reading it cannot conclude on a result it cannot judge.
    (Other dtypes have no such paths: their bound is already their own unit roundoff.)"""
    paths = reduced_precision_paths(capture_settings(), ctx.device, ctx.dtype)
    used: bool | None = False
    if paths:
        evidence = [out.facts.get(f"kernels.{side}.tf32") for side in ("linear", "conv1d")]
        used = True if True in evidence else (False if ctx.device.type == "cuda" and
                                              all(e is False for e in evidence) else None)
        taken = {True: "taken", False: "not taken by the kernels that ran", None: "cannot tell whether taken"}[used]
        out.note(f"Reduced-precision paths enabled for this result: {', '.join(paths)} ({taken}). A side on one "
                 "may exceed the float32 rounding bound; the determinism matrix shows the difference with TF32 off "
                 "where the device has TF32.")
    out.fact("precision.reduced_paths", ", ".join(paths) or "none")
    out.fact("precision.reduced_used", used)
    out.fact("precision.full", True if used is False else None)


# --- the answer's code, run as published -------------------------------------------------------------------

_ANSWER = "https://stackoverflow.com/questions/55576314/conv1d-with-kernel-size-1-vs-linear-layer"

#: The answer's code as quoted (with attribution) by the copies of the answer the project could retrieve (see
#: bench/published/README.md), verbatim but for the three edits in ``_published``'s ``edits``.
_SNIPPET = '''\
import torch
torch.manual_seed({seed})
conv = torch.nn.Conv1d(8,32,1)
linear = torch.nn.Linear(8,32)
# use same initialization
linear.weight = torch.nn.Parameter(conv.weight.squeeze(2))
linear.bias = torch.nn.Parameter(conv.bias)
tensor = torch.randn(128,256,8)
permuted_tensor = tensor.permute(0,2,1).clone().contiguous()
out_linear = linear(tensor)
print(out_linear.mean())
# tensor(0.0067, grad_fn=<MeanBackward0>)
out_conv = conv(permuted_tensor)
print(out_conv.mean())
# tensor(0.0067, grad_fn=<MeanBackward0>)
# %%timeit
# _ = linear(tensor)
# 151 µs ± 297 ns per loop
# %%timeit
# _ = conv(permuted_tensor)
# 1.43 ms ± 6.33 µs per loop
'''


def published_protocol(seed: int) -> Published:
    """The answer's code on ``seed`` (it sets none: the case seed is added, and said so)."""
    return Published(
        source=_ANSWER,
        title='Stack Overflow 55576314 "Conv1d with kernel_size=1 vs Linear layer": the answer\'s code',
        snippet=_SNIPPET.format(seed=seed),
        edits=("'import torch' added (the answer shows none)",
               f"'torch.manual_seed({seed})' added before the code: the answer sets no seed (the case seed)",
               "the two %%timeit cells (IPython magics, not Python) commented out: the timing claims are "
               "measured by the case's interleaved timing harness (see its timing section), not by this snippet",
               "the answer's text is as quoted by two retrieved copies that cite it (the Stack Overflow page "
               "itself was not retrievable)"),
        departures=("forward and gradient comparison (variant, facts fwd.* and grad.*): parameters drawn from the "
                    "case's generator (nn's default distribution, not its RNG stream), the input from the case "
                    "generator, the Conv1d fed a permuted view (not .clone().contiguous()), gradients of an MSE "
                    "loss to a random target (the answer's code computes no gradient)",
                    "growth with depth (the claim): the answer asserts it without code; the stack it implies is "
                    "run: Conv1d(8, 32, 1) then Conv1d(32, 32, 1) layers default-initialised under the seed, the "
                    "Linear layers given the Conv1d's parameters as in the snippet, the input drawn after them "
                    "and permuted with .clone().contiguous() (facts growth.depth.*)",
                    "growth variant (facts growth.vp.depth.*): width-32 layers with a variance-preserving "
                    "U(-sqrt(3/32), sqrt(3/32)) init from the case generator, growth_rows rows; and one layer of "
                    "growing in_features K (growth.k.*)",
                    "timing: interleaved rounds of the case's harness in one warm process, Conv1d on a contiguous "
                    "input (as the snippet), with forward+backward too; not %%timeit in a fresh kernel"),
        outputs=("conv", "linear", "tensor", "permuted_tensor", "out_linear", "out_conv"),
        seed_call=f"torch.manual_seed({seed})",
    )


#: The allocator regimes the answer's %%timeit is repeated in, each in a fresh process: glibc's defaults (what a
#: reader's fresh script gets: oneDNN's buffers for Conv1d are fresh pages on every call) and a top pad large
#: enough that freed memory stays mapped, with a trim threshold above it (the warm regime a long-lived process
#: usually reaches; a top pad alone is given back at every free, and every call then grows the heap again).
PUBLISHED_REGIMES: dict[str, dict[str, str]] = {"default": {}, "warm": dict(WARM_ALLOCATOR)}


#: a regime's fresh processes agree when their Conv1d/Linear ratios lie within this factor of each other
STABLE_SPREAD = 1.3


def _median(values: list[float]) -> float:
    v = sorted(values)
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


def _published_timing(ctx: CaseContext, out: CaseOutput) -> None:
    """The answer's two %%timeit cells as published (``_ = linear(tensor)``, ``_ = conv(permuted_tensor)``, grad
    mode on, after its own setup), in ``params.published_timing_processes`` fresh processes per regime, the
    regimes interleaved (load drift hits both), each process with its own timeit loop (Timer.autorange, 7 repeats,
    as %timeit). Facts ``timing.published.<regime>.*``: the median over the processes and their range; a regime
    whose processes disagree (ratios more than STABLE_SPREAD apart, or not all in one allocator regime) is marked
    unstable, and the claim on them is decided only where every process agrees."""
    from reportgen.measure.regime import FreshProcessError, FreshTiming, time_snippets_in_fresh_process

    setup = _SNIPPET.format(seed=ctx.seed).split("out_linear = ", 1)[0]
    stmts = ["_ = linear(tensor)", "_ = conv(permuted_tensor)"]
    n = int(ctx.params["published_timing_processes"])
    got: dict[str, list[tuple[FreshTiming, FreshTiming]]] = {r: [] for r in PUBLISHED_REGIMES}
    for i in range(n):
        for regime, env in PUBLISHED_REGIMES.items():
            ctx.progress(f"timing the answer's %%timeit in a fresh process ({regime} allocator, {i + 1} of {n})")
            try:
                got[regime].append(tuple(time_snippets_in_fresh_process(  # type: ignore[arg-type]
                    setup, stmts, repeat=7, malloc_env=env, threads=torch.get_num_threads(), timeout_s=180)))
            except FreshProcessError as exc:
                out.note(f"The answer's %%timeit ({regime} allocator, process {i + 1}) could not be timed: {exc}")
    rows, said = [], []
    for regime, pairs in got.items():
        if not pairs:
            continue
        env = PUBLISHED_REGIMES[regime]
        key = f"timing.published.{regime}"
        ratios = [c.median_s / lin.median_s for lin, c in pairs if lin.median_s > 0]
        regimes = sorted({c.regime or "unknown" for _, c in pairs})
        faults = _median([c.mean_minflt_per_call for _, c in pairs])
        # with one process there is nothing to agree with: stable is not measured (None), not true
        stable = (max(ratios) <= STABLE_SPREAD * min(ratios) and len(regimes) == 1) if len(ratios) > 1 else None
        ratio = _median(ratios) if ratios else None
        out.fact(f"{key}.linear_s", _median([lin.median_s for lin, _ in pairs]))
        out.fact(f"{key}.conv1d_s", _median([c.median_s for _, c in pairs]))
        out.fact(f"{key}.conv1d_over_linear", ratio)
        out.fact(f"{key}.conv1d_over_linear.per_process_min", min(ratios) if ratios else None)
        out.fact(f"{key}.conv1d_over_linear.per_process_max", max(ratios) if ratios else None)
        out.fact(f"{key}.processes", len(pairs))
        out.fact(f"{key}.stable", stable)
        out.fact(f"{key}.conv1d_minflt_per_call", faults)
        out.fact(f"{key}.linear_minflt_per_call", _median([lin.mean_minflt_per_call for lin, _ in pairs]))
        out.fact(f"{key}.conv1d_regime", regimes[0] if len(regimes) == 1 else "mixed: " + ", ".join(regimes))
        out.extra.setdefault("published_timing", {})[regime] = [
            {"linear": lin.to_dict(), "conv1d": c.to_dict()} for lin, c in pairs]
        for j, (lin, c) in enumerate(pairs, 1):
            rows.append([regime, j, ", ".join(f"{k}={v}" for k, v in env.items()) or "glibc defaults",
                         lin.median_s, c.median_s, c.median_s / lin.median_s if lin.median_s > 0 else None,
                         c.mean_minflt_per_call, c.regime or "–"])
        if ratio is not None:
            where = "with a warm allocator" if regime == "warm" else "in a fresh process with glibc defaults"
            spread = ("1 process: agreement between processes not measured" if len(ratios) == 1 else
                      f"{min(ratios):.2g}–{max(ratios):.2g}× over {len(ratios)} processes"
                      + ("" if stable else ", unstable: the processes disagree"))
            if len(pairs) < n:
                spread += f"; {n - len(pairs)} of {n} processes could not be timed"
            said.append(f"{ratio:.2g}× {where} ({spread}; Conv1d: median {faults:.0f} page faults per call, "
                        f"the processes {'all ' + regimes[0] if len(regimes) == 1 else ' / '.join(regimes)})")
    if rows:
        out.add_table("The answer's %%timeit, as published, in fresh processes",
                      ["allocator", "process", "environment", "Linear per call (s)", "Conv1d per call (s)",
                       "Conv1d / Linear", "Conv1d page faults / call", "Conv1d regime"], rows,
                      note="Each row is its own new interpreter (the regimes interleaved): the answer's setup, then "
                           "timeit's autorange and 7 repeats of each cell, median per call. A call that faults in "
                           "fresh pages for oneDNN's buffers is much slower than one that reuses them; which regime "
                           "a process is in depends on its allocator's history, so with glibc's defaults fresh "
                           "processes can disagree by several times.")
        out.note("Timed as the answer times it: Conv1d / Linear " + "; ".join(said) + ".")


def _published(ctx: CaseContext, out: CaseOutput) -> None:
    """The answer's code first (float32 on CPU, as published), on the case seed, judged like the variant: each
    side against float64 and the rounding bound, and Linear vs Conv1d. Its facts: ``published.*``."""
    run = run_published(published_protocol(ctx.seed))
    lin, tensor = run["linear"], run["tensor"]
    y_lin = run["out_linear"].detach()
    y_conv = run["out_conv"].detach().permute(0, 2, 1)  # (N, C, L) -> (N, L, C), as the Linear's
    w, b = lin.weight.detach(), lin.bias.detach()
    ref = F.linear(tensor.double(), w.double(), b.double())
    bound = matmul_bound(tensor, w.t(), torch.float32, bias=b)
    judge(out, "published.fwd", [SideOutput("linear", "Linear", y_lin, bound),
                                 SideOutput("conv1d", "Conv1d", y_conv, bound)], ref,
          desc=f"γ_{w.shape[1] + 1}·(|x|ᵀ|w| + |b|), u = 2⁻²⁴", factor=ctx.bound_factor, keys=_FACT_KEYS,
          name="the answer's code: forward")
    diff = (y_lin.double() - y_conv.double()).abs()
    mean_lin, mean_conv = run["out_linear"].detach().mean(), run["out_conv"].detach().mean()
    out.fact("published.out_linear_mean", float(mean_lin))
    out.fact("published.out_conv_mean", float(mean_conv))
    out.fact("published.means_bitwise_equal", bool(torch.equal(mean_lin, mean_conv)))
    out.fact("published.fwd.max_abs_diff", float(diff.max()))
    out.fact("published.fwd.max_abs_diff_over_max_abs_out", float(diff.max() / y_lin.double().abs().max()))
    out.fact("published.seed", ctx.seed)
    out.extra["published"] = run.section()
    out.note(f"The answer's code (torch.manual_seed({ctx.seed}), as it sets none): out_linear.mean() = "
             f"{float(mean_lin):.6g}, out_conv.mean() = {float(mean_conv):.6g} (the answer printed 0.0067 for "
             f"both, on its own unseeded draw); {float((y_lin == y_conv).double().mean()):.1%} of the outputs "
             f"bitwise equal, max |Linear − Conv1d| {float(diff.max()):.3g}.")


FACTS = schema(
    EXPLAIN_FACTS,
    comparison_facts("fwd.*"), comparison_facts("grad.*.*"),
    FactSpec("forward.conv_op", STR), FactSpec("growth.conv_op", STR), FactSpec("growth.conv_path_as_forward", BOOL),
    # growth with depth: growth.depth.* the default-init stack the answer implies (the claim), growth.vp.depth.*
    # the variance-preserving variant
    *[facts(pre, ["diff_first", "diff_last", "diff_ratio_last_first", "max_normalised", "spearman", "rel_first",
                  "rel_last", "rel_ratio_last_first", "rel_spearman", "out_first", "out_last"], NUMBER)
      for pre in ("growth.depth", "growth.vp.depth")],
    # the answer's code as published
    comparison_facts("published.fwd.*", _FACT_KEYS),
    facts("published", ["out_linear_mean", "out_conv_mean", "seed"], NUMBER),
    FactSpec("published.means_bitwise_equal", BOOL),
    facts("published.fwd", ["max_abs_diff", "max_abs_diff_over_max_abs_out"], NUMBER),
    facts("growth.k", ["diff_max_over_bound", "spearman"], NUMBER),
    FactSpec("hist.*.zero_fraction", NUMBER),
    FactSpec("precision.full", BOOL), FactSpec("precision.reduced_paths", STR), FactSpec("precision.reduced_used", BOOL),
    timing_facts(),
    FactSpec("timing.published.*.linear_s", NUMBER, timing=True),
    FactSpec("timing.published.*.conv1d_s", NUMBER, timing=True),
    FactSpec("timing.published.*.conv1d_over_linear", NUMBER, timing=True),
    FactSpec("timing.published.*.conv1d_over_linear.per_process_min", NUMBER, timing=True),
    FactSpec("timing.published.*.conv1d_over_linear.per_process_max", NUMBER, timing=True),
    FactSpec("timing.published.*.processes", NUMBER, timing=True),
    FactSpec("timing.published.*.stable", BOOL, timing=True),
    FactSpec("timing.published.*.*_minflt_per_call", NUMBER, timing=True),
    FactSpec("timing.published.*.conv1d_regime", STR, timing=True),
)


@register("linear_vs_conv1d", "nn.Conv1d(kernel_size=1) vs nn.Linear with shared weights: forward and gradient "
          "errors against a float64 reference and the rounding bound, growth with depth and width, timing.",
          facts=FACTS, defaults=DEFAULTS, validate=_validate)
def run(ctx: CaseContext) -> CaseOutput:
    _check_dtype_supported(ctx.device, ctx.dtype)
    out = ctx.output()
    ctx.progress("the answer's code, as published")
    _published(ctx, out)
    ctx.progress("forward and backward (variant)")
    diffs = _forward_backward(ctx, out)
    _histograms(out, diffs, ctx.params["histogram_bins"])
    ctx.progress("growth with depth (default init; variance-preserving variant) and K")
    _growth_default(ctx, out)
    _growth(ctx, out)
    robust = getattr(ctx, "robustness_run", False)
    if not robust:  # kernels, determinism and timing: once, on the main run
        _why(ctx, out)
    _growth_path(ctx, out)  # after _why: reads the kernel facts
    _reduced_precision(ctx, out)  # after _why: reads the kernel facts
    if ctx.timing_enabled and not robust:
        _timing(ctx, out)
        if ctx.device.type == "cpu" and ctx.dtype == torch.float32:  # the answer's code: float32 on the CPU
            _published_timing(ctx, out)
    return out
