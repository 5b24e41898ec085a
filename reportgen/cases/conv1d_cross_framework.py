"""Conv1d across frameworks: MindSpore's nn.Conv1d and JAX's lax.conv_general_dilated against PyTorch.

Source: MindSpore's page "Function Differences with torch.nn.Conv1d". Its statements are checked against the
installed frameworks, not restated: MindSpore and JAX run in their own environments through probes
(:mod:`reportgen.probes`), PyTorch runs here. Each framework's facts carry its prefix (``torch.``, ``ms.``,
``jax.``); a framework that is not configured, or whose probe fails, simply has no facts, so the claims that
need it become "not measurable here" while the case itself still succeeds.

How the 'same' split is measured: a one-hot kernel (tap 0 = 1) over x = 1..L outputs x_pad[i], so any non-zero
output y[i] gives the left padding as i + 1 - y[i]; the right padding follows from the output length.
"""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reportgen.facts import (ANY, FactSpec, schema)
from reportgen.cases import CaseContext, CaseOutput, CaseSkipped, register
from reportgen.cases import _mindspore_page as page
from reportgen.errors import UsageError
from reportgen.measure.numerics import compare, conv1d_bound
from reportgen.measure.settings import applied_settings
from reportgen.probes import ProbeResult, run_probe

SOURCE = "https://www.mindspore.cn/docs/en/r2.0/note/api_mapping/pytorch_diff/Conv1d.html"

DEFAULTS: dict[str, Any] = {
    "batch": 2,
    "in_channels": 8,
    "out_channels": 16,
    "length": 64,
    "kernel_size": 4,
    "pad": 1,
    "same_length": 16,
    "same_configs": [[2, 1], [3, 1], [4, 1], [5, 1], [3, 2], [4, 2], [2, 3], [4, 3]],
    "init_in_channels": 16,
    "init_out_channels": 256,
    "init_kernel_size": 4,
    "alpha": 0.01,
    "timeout_s": 180.0,
}

FRAMEWORKS = {  # name -> (fact prefix, probe script, label)
    "mindspore": ("ms", "mindspore_conv1d", "MindSpore"),
    "jax": ("jax", "jax_conv", "JAX"),
}
NUMERIC = ("valid", "pad", "same", "reflect")


# ------------------------------------------------------------------------------------------------- helpers

def split_from_onehot(y: np.ndarray, length: int, k: int, d: int) -> tuple[int, int] | None:
    """(left, right) padding from the output of a tap-0 one-hot kernel over x = 1..length; None if ambiguous."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    idx = np.nonzero(y)[0]
    if idx.size == 0:
        return None
    lefts = idx + 1 - y[idx]
    if not (np.all(lefts == lefts[0]) and float(lefts[0]).is_integer()):
        return None
    left = int(lefts[0])
    right = y.size - length - left + (k - 1) * d
    return (left, right) if left >= 0 and right >= 0 else None


def odd_extra_side(splits: dict[tuple[int, int], tuple[int, int] | None]) -> str | None:
    """Where the odd padding element goes over every odd-total config: "left", "right", "mixed"; None if none."""
    sides = {("left" if lr[0] > lr[1] else "right") for lr in splits.values() if lr and (lr[0] + lr[1]) % 2}
    return None if not sides else (sides.pop() if len(sides) == 1 else "mixed")


def even_symmetric(splits: dict[tuple[int, int], tuple[int, int] | None]) -> bool | None:
    even = [lr for lr in splits.values() if lr and (lr[0] + lr[1]) % 2 == 0]
    return None if not even else all(lr[0] == lr[1] for lr in even)


def _shape(t: Any) -> str:
    return "x".join(str(int(s)) for s in t.shape)


def _ks(samples: np.ndarray, dist: str, args: tuple[float, ...]) -> tuple[float, float] | None:
    try:
        from scipy import stats
    except ImportError:
        return None
    res = stats.kstest(np.asarray(samples, dtype=np.float64), dist, args=args)
    return float(res.statistic), float(res.pvalue)


def _check_params(p: dict[str, Any]) -> None:
    for pair in p["same_configs"]:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, int) and v >= 1 for v in pair)):
            raise ValueError(f"params.same_configs: expected [kernel, dilation] pairs of positive ints, got {pair!r}")


# ------------------------------------------------------------------------------------------------- torch side

class Inputs:
    """The shared float32 inputs (PyTorch layout) and the float64 references and bounds computed from them."""

    def __init__(self, ctx: CaseContext) -> None:
        p = ctx.params
        gen = ctx.generator()
        n, cin, cout, length, k = p["batch"], p["in_channels"], p["out_channels"], p["length"], p["kernel_size"]
        bound = 1 / math.sqrt(cin * k)  # PyTorch's own default range, so magnitudes are realistic
        self.x = torch.randn(n, cin, length, generator=gen, dtype=torch.float64).float()
        self.w = ((torch.rand(cout, cin, k, generator=gen, dtype=torch.float64) * 2 - 1) * bound).float()
        self.b = ((torch.rand(cout, generator=gen, dtype=torch.float64) * 2 - 1) * bound).float()
        self.pad = p["pad"]
        self.terms = cin * k + 1  # products per output, plus the bias (the bound's n)
        self.ref: dict[str, torch.Tensor] = {}
        self.bound: dict[str, torch.Tensor] = {}
        for mode in NUMERIC:
            x, kwargs = self._conv_input(mode)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # 'same' with an even kernel warns about an extra padded copy
                self.ref[mode] = F.conv1d(x.double(), self.w.double(), self.b.double(), **kwargs)
            self.bound[mode] = conv1d_bound(x, self.w, self.b, torch.float32, **kwargs)

    def _conv_input(self, mode: str) -> tuple[torch.Tensor, dict[str, Any]]:
        """The input and F.conv1d arguments that compute ``mode`` (reflect: padded explicitly, then valid)."""
        if mode == "reflect":
            return F.pad(self.x, (self.pad, self.pad), mode="reflect"), {}
        return self.x, {"padding": {"valid": 0, "pad": self.pad, "same": "same"}[mode]}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"x": self.x.numpy(), "w": self.w.numpy(), "b": self.b.numpy()}


def torch_outputs(inp: Inputs, device: torch.device) -> dict[str, torch.Tensor]:
    cin, cout, k = inp.w.shape[1], inp.w.shape[0], inp.w.shape[2]
    out = {}
    for mode in NUMERIC:
        kw = {"valid": {}, "pad": {"padding": inp.pad}, "same": {"padding": "same"},
              "reflect": {"padding": inp.pad, "padding_mode": "reflect"}}[mode]
        conv = nn.Conv1d(cin, cout, k, **kw).to(device)
        with torch.no_grad():
            conv.weight.copy_(inp.w)
            conv.bias.copy_(inp.b)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[mode] = conv(inp.x.to(device)).cpu()
    return out


def torch_same_splits(p: dict[str, Any]) -> dict[tuple[int, int], tuple[int, int] | None]:
    length = p["same_length"]
    x = torch.arange(1, length + 1, dtype=torch.float32).reshape(1, 1, length)
    splits = {}
    for k, d in p["same_configs"]:
        w = torch.zeros(1, 1, k)
        w[0, 0, 0] = 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = F.conv1d(x, w, padding="same", dilation=d)
        splits[(k, d)] = split_from_onehot(y.numpy(), length, k, d)
    return splits


def torch_facts(ctx: CaseContext, out: CaseOutput) -> dict[str, Any]:
    """Torch's defaults, padding modes, page examples and default-init samples; returns init samples."""
    p = ctx.params
    conv = nn.Conv1d(p["in_channels"], p["out_channels"], p["kernel_size"])
    out.fact("torch.versions.torch", torch.__version__)
    out.fact("torch.default_has_bias", conv.bias is not None)
    out.fact("torch.default_padding", repr(conv.padding))
    out.fact("torch.default_padding_mode", conv.padding_mode)
    out.fact("torch.weight_shape", _shape(conv.weight))
    out.fact("torch.weight_ndim", conv.weight.dim())
    length = p["length"]
    out.fact("torch.default_output_length", int(conv(torch.ones(1, p["in_channels"], length)).shape[-1]))
    out.fact("torch.default_pads_input", out.facts["torch.default_output_length"] > length - (p["kernel_size"] - 1))
    _torch_padding_modes(out)
    _torch_examples(ctx, out)
    with ctx.global_rng():  # default init draws from the global RNG: seed it, then restore
        init = nn.Conv1d(p["init_in_channels"], p["init_out_channels"], p["init_kernel_size"])
    return {"weight": init.weight.detach().numpy().reshape(-1), "bias": init.bias.detach().numpy().reshape(-1),
            "groups": init.groups}


def _torch_padding_modes(out: CaseOutput) -> None:
    """Conv1d(padding=p, padding_mode=m) equals conv of F.pad(x, (p, p), mode=m) -- bit for bit?"""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 3, 12, generator=gen)
    matches = []
    for mode in ("zeros", "reflect", "replicate", "circular"):
        conv = nn.Conv1d(3, 2, 3, padding=2, padding_mode=mode)
        with torch.no_grad():
            y = conv(x)
            xp = F.pad(x, (2, 2), mode="constant" if mode == "zeros" else mode)
            y2 = F.conv1d(xp, conv.weight, conv.bias)
        matches.append(bool(torch.equal(y, y2)))
        out.fact(f"torch.padding_mode.{mode}.matches_F_pad", matches[-1])
    out.fact("torch.padding_modes_match_F_pad", all(matches))


def _torch_examples(ctx: CaseContext, out: CaseOutput) -> None:
    """The page's four code examples, PyTorch halves, run as published (their MindSpore halves run in the probe):
    what each printed against what the page says it prints."""
    runs = page.run_torch_examples(ctx.seed)
    page.publish_examples(out, runs, "torch.published.")
    out.extra["published_runs"] = runs  # the section is written once the probe's halves are in (_tables)


# ------------------------------------------------------------------------------------------------- probes

def probe_params(p: dict[str, Any], seed: int) -> dict[str, Any]:
    keys = ("in_channels", "out_channels", "kernel_size", "length", "same_length", "same_configs", "pad",
            "init_in_channels",
            "init_out_channels", "init_kernel_size")
    # the page's MindSpore halves, as text: the probe runs them as published
    return {**{k: p[k] for k in keys}, "seed": seed, "published_ms": [ms for _, ms in page.EXAMPLES]}


def run_probes(ctx: CaseContext, inp: Inputs) -> dict[str, ProbeResult]:
    """Both probes at once (MindSpore's import alone takes seconds); unconfigured ones return at once."""
    params = probe_params(dict(ctx.params), ctx.seed)
    expect = [f"y_{m}" for m in NUMERIC if m != "reflect"]

    def one(name: str) -> ProbeResult:
        _, script, _ = FRAMEWORKS[name]
        return run_probe(name, ctx.frameworks.get(name), script, task="conv1d_cross_framework", params=params,
                         inputs=inp.arrays(), timeout_s=float(ctx.params["timeout_s"]), expect_outputs=expect)

    with ThreadPoolExecutor(max_workers=len(FRAMEWORKS)) as pool:
        futures = {name: pool.submit(one, name) for name in FRAMEWORKS}
        return {name: f.result() for name, f in futures.items()}


def probe_facts(name: str, res: ProbeResult, out: CaseOutput) -> None:
    prefix = FRAMEWORKS[name][0]
    for key, value in res.facts.items():
        if key.startswith(prefix + "."):  # a probe may only speak for its own framework
            out.fact(key, value)
    for key, value in sorted(res.versions.items()):
        out.fact(f"{prefix}.versions.{key}", value)
    out.fact(f"{prefix}.probe.wall_s", round(res.wall_s, 3))


# ------------------------------------------------------------------------------------------------- judgements

def same_split_facts(out: CaseOutput, prefix: str, splits: dict[tuple[int, int], tuple[int, int] | None],
                     mode: str = "same") -> None:
    """``<prefix>.<mode>_left_pad.k4_d1`` etc., plus where the odd element goes and whether even splits are even."""
    for (k, d), lr in splits.items():
        if lr is not None:
            out.fact(f"{prefix}.{mode}_left_pad.k{k}_d{d}", lr[0])
            out.fact(f"{prefix}.{mode}_right_pad.k{k}_d{d}", lr[1])
    out.fact(f"{prefix}.{mode}_odd_extra_side", odd_extra_side(splits))
    out.fact(f"{prefix}.{mode}_even_symmetric", even_symmetric(splits))


def splits_equal(a: dict, b: dict) -> bool | None:
    both = [key for key in a if a[key] is not None and b.get(key) is not None]
    return None if not both else all(a[key] == b[key] for key in both)


def probe_splits(res: ProbeResult, p: dict[str, Any], key_prefix: str) -> dict[tuple[int, int], tuple[int, int] | None]:
    splits = {}
    for k, d in p["same_configs"]:
        y = res.outputs.get(f"{key_prefix}_k{k}_d{d}")
        splits[(k, d)] = None if y is None else split_from_onehot(y, p["same_length"], k, d)
    return splits


def numeric_comparisons(out: CaseOutput, inp: Inputs, prefix: str, label: str,
                        outputs: dict[str, np.ndarray | torch.Tensor], torch_out: dict[str, torch.Tensor]) -> None:
    """Each side against the float64 reference, then against torch (bound = both sides' bounds added)."""
    for mode in NUMERIC:
        if mode not in outputs:
            continue
        y = torch.as_tensor(np.asarray(outputs[mode])) if prefix != "torch" else outputs[mode]
        if tuple(y.shape) != tuple(inp.ref[mode].shape):
            out.fact(f"{prefix}.vs_ref.{mode}.verdict", f"shape {_shape(y)} != {_shape(inp.ref[mode])}")
            continue
        desc = f"γ_{inp.terms}·(|x|∗|w| + |b|), float32"
        c = out.add_comparison(compare(y, inp.ref[mode], inp.bound[mode], name=f"{mode}: {label} vs float64",
                                       actual_label=label, expected_label="float64 reference",
                                       bound_desc=desc), group=f"{label} vs float64 reference")
        out.fact(f"{prefix}.vs_ref.{mode}.verdict", c.verdict)
        out.fact(f"{prefix}.vs_ref.{mode}.max_normalised", c.max_normalised)
        if prefix == "torch":
            continue
        c = out.add_comparison(compare(y, torch_out[mode], 2 * inp.bound[mode], name=f"{mode}: {label} vs PyTorch",
                                       actual_label=label, expected_label="PyTorch", reference=inp.ref[mode],
                                       bound_desc="sum of both sides' bounds"), group=f"{label} vs PyTorch")
        for key in ("verdict", "max_normalised", "max_abs", "bitwise_equal_fraction"):
            out.fact(f"{prefix}.vs_torch.{mode}.{key}", getattr(c, key))


def init_fit(out: CaseOutput, prefix: str, label: str, weight: np.ndarray, bias: np.ndarray, fan_in: int,
             alpha: float, rows: list[list[Any]]) -> None:
    """KS tests of default-initialised parameters: against the page's N(0, 1) and against U(±1/sqrt(fan_in))."""
    bound = 1 / math.sqrt(fan_in)
    out.fact(f"{prefix}.init.fan_in_bound", bound)
    out.fact(f"{prefix}.init.weight_absmax", float(np.abs(weight).max()))
    out.fact(f"{prefix}.init.weight_std", float(weight.std()))
    out.fact(f"{prefix}.init.bias_absmax", float(np.abs(bias).max()))
    out.fact(f"{prefix}.init.bias_all_zero", bool(np.all(bias == 0)))
    tests = [("weight", weight, "normal01", "N(0, 1)", "norm", (0.0, 1.0)),
             ("weight", weight, "uniform", f"U(±{bound:.4g})", "uniform", (-bound, 2 * bound)),
             ("bias", bias, "uniform", f"U(±{bound:.4g})", "uniform", (-bound, 2 * bound))]
    for param, samples, key, hyp, dist, args in tests:
        res = _ks(samples, dist, args)
        if res is None:
            rows.append([label, param, hyp, samples.size, None, None, "needs scipy"])
            continue
        stat, pvalue = res
        out.fact(f"{prefix}.init.{param}_{key}_ks", stat)
        out.fact(f"{prefix}.init.{param}_{key}_p", pvalue)
        rows.append([label, param, hyp, samples.size, stat, pvalue,
                     f"consistent (p ≥ {alpha:g})" if pvalue >= alpha else f"rejected (p < {alpha:g})"])


# ------------------------------------------------------------------------------------------------- the case

FACTS = schema(
    # per framework: torch (in-process), ms (MindSpore) and jax (probes in their own interpreters), each with its
    # comparison with torch; the values are what each framework reports (shapes as text, pads, KS statistics...)
    FactSpec("torch.**", ANY), FactSpec("ms.**", ANY), FactSpec("jax.**", ANY),
)


#: where the case's own measurements depart from the page's code examples
_DEPARTURES = (
    "the examples print shapes only: the numeric comparisons load PyTorch's weights into MindSpore (and JAX) on "
    "the case's own random input (params batch, in_channels, out_channels, length, kernel_size) against a "
    "float64 reference",
    "reflect: the case pads the length axis only (nn.Pad with ((0, 0), (0, 0), (p, p))); the page's example 3 "
    "also pads the channel axis",
    "the 'same' split, defaults, weight loading and initialisation are measured with the case's own probes; the "
    "page states them without code",
)

MAX_TIMEOUT_S = 3600.0  # per probe; MindSpore's import takes seconds, a probe that needs an hour is hung


def _validate(p: Any) -> None:
    if not 0 < p["alpha"] < 1:
        raise UsageError(f"conv1d_cross_framework: params.alpha: a significance level strictly between 0 and 1, "
                         f"got {p['alpha']!r}")
    if not 0 < p["timeout_s"] <= MAX_TIMEOUT_S:
        raise UsageError(f"conv1d_cross_framework: params.timeout_s: must be in (0, {MAX_TIMEOUT_S:g}] seconds, "
                         f"got {p['timeout_s']!r}")


@register("conv1d_cross_framework",
          "MindSpore nn.Conv1d and JAX lax.conv_general_dilated vs torch.nn.Conv1d: defaults, 'same' padding split, "
          "shapes, default initialisation and numerics, each framework in its own environment.",
          facts=FACTS, defaults=DEFAULTS, validate=_validate)
def run(ctx: CaseContext) -> CaseOutput:
    if ctx.dtype != torch.float32:
        raise CaseSkipped("the probes exchange float32 arrays (MindSpore's CPU Conv1d is float32); use dtype float32")
    p = dict(ctx.params)
    _check_params(p)
    out = ctx.output()
    inp = Inputs(ctx)
    ctx.progress("probes started")
    with ThreadPoolExecutor(max_workers=1) as pool:  # the probes wait on child processes; torch works meanwhile
        pending = pool.submit(run_probes, ctx, inp)
        torch_out, init_rows = _torch_side(ctx, out, inp)  # also pays the scipy/torch.testing imports meanwhile
        probes = pending.result()
    ctx.progress("probes done: " + ", ".join(f"{n} {r.status}" for n, r in probes.items()))
    splits = {"torch": torch_same_splits(p)}
    same_split_facts(out, "torch", splits["torch"])
    _mindspore_side(p, out, inp, probes["mindspore"], torch_out, splits, init_rows)
    _jax_side(p, out, inp, probes["jax"], torch_out, splits)
    if "ms" in splits and "jax" in splits:
        out.fact("ms.same_split_equals_jax_same", splits_equal(splits["ms"], splits["jax"]))
    _tables(ctx, out, probes, splits, init_rows)
    _notes(out, p, probes)
    if not any(r.ok for r in probes.values()):  # torch's side alone is measured, but nothing was compared with it
        out.extra["skipped_reason"] = ("nothing compared: " + "; ".join(
            f"{FRAMEWORKS[n][2]} {r.skip_text.removeprefix('skipped: ')}" for n, r in probes.items())
            + " (--framework NAME=PYTHON, docs/frameworks.md)")
    return out


def _torch_side(ctx: CaseContext, out: CaseOutput, inp: Inputs) -> tuple[dict[str, torch.Tensor], list[list[Any]]]:
    p = ctx.params
    init = torch_facts(ctx, out)
    # The other frameworks run their convolutions in float32 on the CPU; on a GPU, torch's cuDNN would use TF32 by
    # default and every cross-framework comparison would measure TF32 instead of the frameworks' semantics.
    with applied_settings(conv_tf32=False if ctx.device.type == "cuda" else None):
        torch_out = torch_outputs(inp, ctx.device)
    if ctx.device.type == "cuda":
        out.note("PyTorch's outputs here were computed with cuDNN TF32 off (float32 throughout), like the other "
                 "frameworks' CPU outputs they are compared with.")
    numeric_comparisons(out, inp, "torch", "PyTorch", torch_out, torch_out)
    rows: list[list[Any]] = []
    fan_in = p["init_in_channels"] * p["init_kernel_size"] // init["groups"]
    init_fit(out, "torch", "PyTorch", init["weight"], init["bias"], fan_in, p["alpha"], rows)
    return torch_out, rows


def _mindspore_side(p: dict[str, Any], out: CaseOutput, inp: Inputs, ms: ProbeResult,
                    torch_out: dict[str, torch.Tensor], splits: dict[str, dict], init_rows: list[list[Any]]) -> None:
    if not ms.ok:
        return
    probe_facts("mindspore", ms, out)
    splits["ms"] = probe_splits(ms, p, "same")
    same_split_facts(out, "ms", splits["ms"])
    out.fact("ms.same_split_equals_torch", splits_equal(splits["ms"], splits["torch"]))
    length_out, ndim = out.facts.get("ms.default_output_length"), out.facts.get("ms.weight_ndim")
    if length_out is not None:  # longer than a 'valid' output: the input was padded
        out.fact("ms.default_pads_input", length_out > p["length"] - (p["kernel_size"] - 1))
    if ndim is not None:
        out.fact("ms.weight_extra_dims", ndim - out.facts["torch.weight_ndim"])
    numeric_comparisons(out, inp, "ms", "MindSpore", {m[2:]: v for m, v in ms.outputs.items() if m.startswith("y_")},
                        torch_out)
    if "init_weight" in ms.outputs and "init_bias" in ms.outputs:
        init_fit(out, "ms", "MindSpore", ms.outputs["init_weight"], ms.outputs["init_bias"],
                 p["init_in_channels"] * p["init_kernel_size"], p["alpha"], init_rows)


def _jax_side(p: dict[str, Any], out: CaseOutput, inp: Inputs, jx: ProbeResult,
              torch_out: dict[str, torch.Tensor], splits: dict[str, dict]) -> None:
    if not jx.ok:
        return
    probe_facts("jax", jx, out)
    splits["jax"] = probe_splits(jx, p, "same")
    splits["jax_lower"] = probe_splits(jx, p, "same_lower")
    same_split_facts(out, "jax", splits["jax"])
    same_split_facts(out, "jax", splits["jax_lower"], mode="same_lower")
    out.fact("jax.same_split_equals_torch", splits_equal(splits["jax"], splits["torch"]))
    out.fact("jax.same_lower_split_equals_torch", splits_equal(splits["jax_lower"], splits["torch"]))
    numeric_comparisons(out, inp, "jax", "JAX", {m[2:]: v for m, v in jx.outputs.items() if m.startswith("y_")},
                        torch_out)


def _cell(res: ProbeResult | None, value: Any) -> dict[str, Any]:
    """A matrix cell: the value, or why there is none (the probe's skip text, or "n/a")."""
    if res is not None and not res.ok:
        return {"text": res.skip_text, "state": "skipped"}
    if value is None:
        return {"text": "not measured", "state": "missing"}
    return {"text": value if isinstance(value, str) else _fmt(value), "state": "value"}


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _lr(splits: dict, key: tuple[int, int]) -> str | None:
    lr = splits.get(key) if splits else None
    return None if lr is None else f"{lr[0]} / {lr[1]}"


def _tables(ctx: CaseContext, out: CaseOutput, probes: dict[str, ProbeResult], splits: dict[str, dict],
            init_rows: list[list[Any]]) -> None:
    p = dict(ctx.params)
    ms, jx = probes["mindspore"], probes["jax"]
    f = out.facts
    rows = []
    for k, d in p["same_configs"]:
        key = (k, d)
        rows.append([k, d, (k - 1) * d, _lr(splits["torch"], key),
                     _lr(splits.get("ms", {}), key) or ms.skip_text or "not measured",
                     _lr(splits.get("jax", {}), key) or jx.skip_text or "not measured",
                     _lr(splits.get("jax_lower", {}), key) or jx.skip_text or "not measured"])
    # these two titles are stored too: the case's tests find the tables by them
    out.add_table("'same' padding, left / right, stride 1 (measured with a one-hot kernel)", rows=rows,
                  id="same_padding")
    out.add_table("Default initialisation: Kolmogorov–Smirnov goodness of fit", rows=init_rows, id="init",
                  meta={"seed": ctx.seed})
    ex_rows, ms_runs = [], {}
    for i in range(1, len(page.EXAMPLES) + 1):
        key = f"example{i}"
        ms_printed, ms_error = f.get(f"ms.published.{key}.printed"), ms.errors.get(f"published.{key}")
        ms_runs[i] = {"printed": ms_printed, "error": ms_error or ms.skip_text}
        if ms_printed is not None:  # against what the page prints under the MindSpore half itself
            out.fact(f"ms.published.{key}.matches_page", ms_printed == page.page_says(page.EXAMPLES[i - 1][1]))
        elif ms.ok and ms_error:  # MindSpore ran, the page's own code failed in it: the example does not hold
            out.fact(f"ms.published.{key}.matches_page", False)
            out.note(f"MindSpore, the page's code example {i} as published: {ms_error}")
        ex_rows.append([i, f.get(f"torch.published.{key}.page_says"), f.get(f"torch.published.{key}.printed"),
                        ms_printed or ms.errors.get(f"published.{key}") or ms.skip_text or "not measured"])
    out.add_table(id="examples", rows=ex_rows)
    runs = out.extra.pop("published_runs", None)
    if runs:
        out.extra["published"] = page.section(runs, _DEPARTURES, mindspore=ms_runs)
    out.extra["cross_framework"] = {
        "source": SOURCE,
        "frameworks": [_framework_row("PyTorch", None, f)] + [
            _framework_row(FRAMEWORKS[n][2], probes[n], f) for n in FRAMEWORKS],
        "columns": ["check", "PyTorch", "MindSpore", "JAX"],
        "rows": _matrix(p, probes, f),
    }


def _framework_row(label: str, res: ProbeResult | None, f: dict[str, Any]) -> dict[str, Any]:
    if res is None:
        return {"label": label, "status": "ok", "python": "(this process)", "reason": "",
                "versions": f"torch {torch.__version__}", "import_s": None, "wall_s": None}
    prefix = {"MindSpore": "ms", "JAX": "jax"}[label]
    versions = ", ".join(f"{k} {v}" for k, v in sorted(res.versions.items()))
    return {"label": label, "status": res.status, "python": res.python or "not configured",
            "reason": res.skip_text, "versions": versions, "import_s": f.get(f"{prefix}.probe.import_s"),
            "wall_s": round(res.wall_s, 3) if res.python else None}


def _verdict_text(f: dict[str, Any], prefix: str, kind: str, mode: str) -> str | None:
    verdict = f.get(f"{prefix}.{kind}.{mode}.verdict")
    norm = f.get(f"{prefix}.{kind}.{mode}.max_normalised")
    return None if verdict is None else f"{verdict} (max |Δ|/bound {_fmt(norm)})"


def _matrix(p: dict[str, Any], probes: dict[str, ProbeResult], f: dict[str, Any]) -> list[dict[str, Any]]:
    ms, jx = probes["mindspore"], probes["jax"]
    na = {"text": "n/a", "state": "na"}
    pval = (lambda pre, par, key: None if f.get(f"{pre}.init.{par}_{key}_p") is None
            else f"p = {f[f'{pre}.init.{par}_{key}_p']:.3g}")
    rows: list[tuple[str, dict, dict, dict]] = [
        ("bias by default", _cell(None, f.get("torch.default_has_bias")),
         _cell(ms, f.get("ms.default_has_bias")), na),
        ("default padding", _cell(None, f"padding={f.get('torch.default_padding')}"),
         _cell(ms, f.get("ms.default_pad_mode") and f"pad_mode='{f.get('ms.default_pad_mode')}'"), na),
        ("'same': odd padding element goes", _cell(None, f.get("torch.same_odd_extra_side")),
         _cell(ms, f.get("ms.same_odd_extra_side")),
         _cell(jx, f.get("jax.same_odd_extra_side") and
               f"SAME: {f.get('jax.same_odd_extra_side')}, SAME_LOWER: {f.get('jax.same_lower_odd_extra_side')}")),
        ("weight shape", _cell(None, f.get("torch.weight_shape")), _cell(ms, f.get("ms.weight_shape")),
         _cell(jx, "OIW, given (no layer)")),
        ("default weight ~ U(±1/√fan_in)", _cell(None, pval("torch", "weight", "uniform")),
         _cell(ms, pval("ms", "weight", "uniform")), na),
        ("default weight ~ N(0, 1)", _cell(None, pval("torch", "weight", "normal01")),
         _cell(ms, pval("ms", "weight", "normal01")), na),
        ("default bias ~ U(±1/√fan_in)", _cell(None, pval("torch", "bias", "uniform")),
         _cell(ms, pval("ms", "bias", "uniform")), na),
    ]
    for mode in NUMERIC:
        rows.append((f"{mode}: vs float64 reference", _cell(None, _verdict_text(f, "torch", "vs_ref", mode)),
                     _cell(ms, _verdict_text(f, "ms", "vs_ref", mode)),
                     _cell(jx, _verdict_text(f, "jax", "vs_ref", mode)) if mode != "reflect" else na))
        rows.append((f"{mode}: vs PyTorch", na, _cell(ms, _verdict_text(f, "ms", "vs_torch", mode)),
                     _cell(jx, _verdict_text(f, "jax", "vs_torch", mode)) if mode != "reflect" else na))
    return [{"check": check, "cells": [a, b, c]} for check, a, b, c in rows]


def _route_text(accepted: bool | None, ok: bool | None) -> str:
    if ok:
        return "works (same outputs as an explicit expand_dims(w, 2))"
    return "is accepted, then the layer fails or computes something else" if accepted else "is refused"


def _notes(out: CaseOutput, p: dict[str, Any], probes: dict[str, ProbeResult]) -> None:
    for name, res in probes.items():
        label = FRAMEWORKS[name][2]
        if not res.ok:
            out.note(f"{label}: {res.skip_text}. Its facts are absent, so claims that need it are not measurable "
                     f"here; configure it with --framework {name}=/path/to/python (docs/frameworks.md).")
        for key, err in sorted(res.errors.items()):
            out.note(f"{label} probe, {key}: {err}")
    f = out.facts
    routes = {"load_param_into_net": "load_param_3d", "Parameter.set_data": "set_data_3d",
              "nn.Conv1d(weight_init=Tensor(w))": "weight_init_3d"}
    told = [f"{name} {_route_text(f.get(f'ms.load.{key}_accepted'), f.get(f'ms.load.{key}_ok'))}"
            for name, key in routes.items() if f.get(f"ms.load.{key}_ok") is not None]
    if told:
        out.note("MindSpore, a PyTorch-shaped (out, in, k) weight given as is: " + "; ".join(told) + ".")
    padded = f.get("ms.published.example3.padded_shape")
    if padded and int(padded.split("x")[1]) != 120:
        out.note(f"The page's reflect example pads with nn.Pad(((0, 0), (1, 1), (1, 1))): the padded input is "
                 f"{padded}, so the channel axis grows from 120 to {padded.split('x')[1]} and the "
                 "Conv1d that follows is not the migrated PyTorch layer. The numeric 'reflect' comparison pads the "
                 "length axis only.")
