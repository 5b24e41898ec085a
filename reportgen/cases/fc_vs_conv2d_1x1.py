"""Linear MLP vs the same MLP built from 1x1 ``nn.Conv2d`` (PyTorch forum thread "Implement Fully Connected
using 1x1 Conv", https://discuss.pytorch.org/t/implement-fully-connected-using-1x1-conv/114630).

The thread's models: Linear 256->64->128->256 with an activation after each layer (the features) and a 256->4
head (the logits), against the same layers as 1x1 convolutions on the input (batch, samples, 256) permuted to
(batch, 256, samples, 1); every weight and bias a constant. With constant 1 and ELU the activations grow to
~1e9, so differences of a few ulps look "huge" in absolute terms; this case measures them against a float64
reference and a rigorous rounding bound, absolute and relative, per layer.

It also shows the thread's semantics point: with samples > 1 a 1x1 conv is a Linear applied at each position
independently, while a (samples x 1) kernel is flatten + one Linear over all positions.

The thread's code runs first, as text (``PUBLISHED``; the parts the stored copy of the thread lost are marked
``# reconstructed``), on the thread's input ``torch.manual_seed(2010); torch.randn(16, 5, 256)``, in both settings
and with samples = 1; its facts are ``published.*`` and the claim is judged on them. The same protocol runs on other
input seeds (``published.seeds.*``; a robustness run reruns it on ``ctx.seed``). The case's own input and the
hidden layers (``fwd.*``) are variants beside it.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from reportgen.facts import BOOL, EXPLAIN_FACTS, LIST, NUMBER, STR, FactSpec, comparison_facts, facts, schema
from reportgen.cases import CaseContext, CaseOutput, register
from reportgen.engine import SideOutput, judge, publish
from reportgen.errors import UsageError
from reportgen.measure.numerics import (Comparison, compare, gamma,
                                        log10_abs_histogram, matmul_bound, unit_roundoff)
from reportgen.published import Published, run_published
from reportgen.verdicts import IDENTICAL, WITHIN, worst_verdict

#: activation -> (module factory, float64 reference function, Lipschitz constant). The Lipschitz constant
#: carries an error in the pre-activation through the activation: ELU(alpha=1) has slope <= 1, sigmoid <= 1/4.
_ACTIVATIONS: dict[str, tuple[Callable[[], nn.Module], Callable[[torch.Tensor], torch.Tensor], float]] = {
    "elu": (nn.ELU, F.elu, 1.0),
    "sigmoid": (nn.Sigmoid, torch.sigmoid, 0.25),
}

#: Allowance for the activation's own rounding, in units of u times |activation value|. Vectorised exp/expm1
#: (SLEEF u10) are accurate to about 1 ulp and sigmoid is a few operations, so 8 ulps is generous; unlike
#: gamma_n this part of the bound is an assumption about the library, and the report says so.
_ACT_ULPS = 8.0


DEFAULTS: dict[str, Any] = {
    "batch_size": 16,
    "samples": 5,
    "input_dim": 256,
    "widths": [64, 128, 256],
    "num_classes": 4,
    # The thread's two settings: all weights/biases 1 with ELU, then 0.001 with sigmoid.
    "variants": [{"activation": "elu", "init": 1.0}, {"activation": "sigmoid", "init": 0.001}],
    # the thread's code is also rerun on this many input seeds (2010, the thread's, then 0, 1, ...)
    "published_seeds": 20,
}


@dataclass(frozen=True)
class Variant:
    activation: str
    init: float

    @property
    def key(self) -> str:
        """Fact-safe name ("elu_w1", "sigmoid_w0p001"): no dots, which separate fact name parts."""
        return f"{self.activation}_w{self.init:g}".replace(".", "p").replace("-", "m")

    @property
    def label(self) -> str:
        return f"{self.activation}, weights=biases={self.init:g}"


def _variants(raw: Any) -> list[Variant]:
    if not isinstance(raw, list) or not raw:
        raise UsageError("fc_vs_conv2d_1x1: params.variants: expected a non-empty list of "
                         "{activation, init} mappings")
    out = []
    for i, v in enumerate(raw):
        where = f"fc_vs_conv2d_1x1: params.variants[{i}]"
        if not isinstance(v, dict) or set(v) != {"activation", "init"}:
            raise UsageError(f"{where}: expected a mapping with keys activation and init, got {v!r}")
        if v["activation"] not in _ACTIVATIONS:
            raise UsageError(f"{where}.activation: {v['activation']!r} is not one of {', '.join(_ACTIVATIONS)}")
        if not isinstance(v["init"], (int, float)) or isinstance(v["init"], bool):
            raise UsageError(f"{where}.init: expected a number, got {v['init']!r}")
        out.append(Variant(v["activation"], float(v["init"])))
    return out


def _ints(raw: Any, name: str) -> list[int]:
    if not isinstance(raw, list) or not raw or not all(isinstance(w, int) and w > 0 for w in raw):
        raise UsageError(f"fc_vs_conv2d_1x1: params.{name}: expected a non-empty list of positive integers")
    return list(raw)


# --- the thread's two models -------------------------------------------------------------------------------

class LinearModel(nn.Module):
    """The thread's ``Model``: Linear backbone with activations, Linear head; returns (logits, feats)."""

    def __init__(self, dims: list[int], classes: int, act: Callable[[], nn.Module]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b, bias=True), act()]
        self.backbone = nn.Sequential(*layers)
        self.logits = nn.Linear(dims[-1], classes, bias=True)

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output (after its activation) and the logits, each (batch, samples, width)."""
        outs = []
        for i in range(0, len(self.backbone), 2):
            x = self.backbone[i + 1](self.backbone[i](x))
            outs.append(x)
        outs.append(self.logits(x))
        return outs


class ConvModel(nn.Module):
    """The thread's ``ModelConv``: the same layers as 1x1 Conv2d on x.unsqueeze(3).permute(0, 2, 1, 3)."""

    def __init__(self, dims: list[int], classes: int, act: Callable[[], nn.Module]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Conv2d(a, b, 1, bias=True), act()]
        self.backbone = nn.Sequential(*layers)
        self.logits = nn.Conv2d(dims[-1], classes, 1, bias=True)

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = x.unsqueeze(3).permute(0, 2, 1, 3)  # (batch, channels, samples, 1), as in the thread
        outs = []
        for i in range(0, len(self.backbone), 2):
            x = self.backbone[i + 1](self.backbone[i](x))
            outs.append(x)
        outs.append(self.logits(x))
        return [o.squeeze(3).permute(0, 2, 1) for o in outs]  # back to (batch, samples, width)


def _fill(model: nn.Module, value: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)


# --- float64 reference and rigorous bound ------------------------------------------------------------------

def reference_with_bounds(x: torch.Tensor, params: list[tuple[torch.Tensor, torch.Tensor]], activation: str,
                          dtype: torch.dtype) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Float64 outputs of every layer and a bound on |computed-in-dtype - reference| for each.

    ``params``: (weight (out, in), bias) per layer, already rounded to ``dtype``; ``x`` too. Layer l:
    pre-activation error <= gamma_{n+1}(|W|(|a| + e) + |b|) + |W| e (rounding of this layer's dot products, on
    inputs that may be off by e, plus the propagated input error), then through the activation:
    e' = L * bound_z + ACT_ULPS * u * (|act(z)| + L * bound_z). The last layer (logits) has no activation.
    """
    _, act_ref, lipschitz = _ACTIVATIONS[activation]
    u = unit_roundoff(dtype)
    a = x.detach().cpu().double()
    e = torch.zeros_like(a)
    refs, bounds = [], []
    for i, (w, b) in enumerate(params):
        w64, b64 = w.detach().cpu().double(), b.detach().cpu().double()
        z = a @ w64.T + b64
        bound_z = gamma(w64.shape[1] + 1, dtype) * ((a.abs() + e) @ w64.abs().T + b64.abs()) + e @ w64.abs().T
        if i == len(params) - 1:
            a, e = z, bound_z
        else:
            a = act_ref(z)
            e = lipschitz * bound_z + _ACT_ULPS * u * (a.abs() + lipschitz * bound_z)
        refs.append(a)
        bounds.append(e)
    return refs, bounds


def _layer_params(model: LinearModel) -> list[tuple[torch.Tensor, torch.Tensor]]:
    linears = [m for m in model.backbone if isinstance(m, nn.Linear)] + [model.logits]
    return [(m.weight, m.bias) for m in linears]


# --- the thread's code, run as published ---------------------------------------------------------------

_THREAD = "https://discuss.pytorch.org/t/implement-fully-connected-using-1x1-conv/114630"

#: The thread's code. Lines ending in "# reconstructed" are not in the retrieved text (the stored copy of the thread
#: stops after the first line of ``init``, and its ``Sequential(...)`` lost lines, its closing parenthesis among
#: them); everything else is the retrieved text verbatim.
_SNIPPET = '''\
import torch


class Model(torch.nn.Module):
    def __init__(self, input_dim: int):
        super(Model, self).__init__()
        self._backbone = torch.nn.Sequential(
            torch.nn.Linear(input_dim, 64, bias=True),
            torch.nn.ELU(),  # reconstructed
            torch.nn.Linear(64, 128, bias=True),
            torch.nn.ELU(),  # reconstructed
            torch.nn.Linear(128, 256, bias=True),
            torch.nn.ELU())  # reconstructed
        self._logits = torch.nn.Linear(256, 4, bias=True)

    def forward(self, x: torch.Tensor):
        feats = self._backbone(x)
        logits = self._logits(feats)
        return logits, feats


class ModelConv(torch.nn.Module):
    def __init__(self, input_dim: int):  # reconstructed
        super(ModelConv, self).__init__()  # reconstructed
        self._backbone = torch.nn.Sequential(  # reconstructed
            torch.nn.Conv2d(input_dim, 64, 1, bias=True),  # reconstructed
            torch.nn.ELU(),  # reconstructed
            torch.nn.Conv2d(64, 128, 1, bias=True),  # reconstructed
            torch.nn.ELU(),  # reconstructed
            torch.nn.Conv2d(128, 256, 1, bias=True),  # reconstructed
            torch.nn.ELU())  # reconstructed
        self._logits = torch.nn.Conv2d(256, 4, 1, bias=True)  # reconstructed

    def forward(self, x: torch.Tensor):
        x = x.unsqueeze(3).permute(0, 2, 1, 3)
        feats = self._backbone(x)
        logits = self._logits(feats)
        feats = feats.squeeze(3).permute(0, 2, 1)
        logits = logits.squeeze(3).permute(0, 2, 1)
        return logits, feats


if __name__ == '__main__':
    input_dim = 256
    num_classes = 4
    samples = 5
    batch_size = 16
    torch.manual_seed(2010)  # reconstructed
    x = torch.randn(batch_size, samples, input_dim)
    layers_width = [50, 100, 150]
    def init(m):
        if hasattr(m, 'weight'):
            torch.nn.init.constant_(m.weight, 1)
        if hasattr(m, 'bias'):  # reconstructed
            torch.nn.init.constant_(m.bias, 1)  # reconstructed
    model = Model(input_dim)  # reconstructed
    model_conv = ModelConv(input_dim)  # reconstructed
    model.apply(init)  # reconstructed
    model_conv.apply(init)  # reconstructed
    logits, feats = model(x)  # reconstructed
    logits_conv, feats_conv = model_conv(x)  # reconstructed
    print((feats - feats_conv).abs().max(), (logits - logits_conv).abs().max())  # reconstructed
'''

PUBLISHED = Published(
    source=_THREAD,
    title='PyTorch forums: "Implement Fully Connected using 1x1 Conv" (the question\'s code)',
    snippet=_SNIPPET,
    edits=("the stored copy of the thread is cut after the first line of init() and its Sequential(...) lost "
           "lines: every line marked '# reconstructed' is not the thread's text but taken from the issue and the "
           "case's description (the ELU after each backbone layer, ModelConv's __init__ written out from 'the "
           "same with torch.nn.Conv2d(in, out, 1, bias=True)', the bias set to the constant as well, the seed "
           "torch.manual_seed(2010) before the input, building, initialising and running both models, the print)",
           "run as a script (__name__ == '__main__')"),
    departures=("the case's variants draw their own input (the case seed, not torch.manual_seed(2010)) and fill "
                "every parameter with the constant directly; their models are the same layers (fact names "
                "fwd.<setting>.<layer>.*, which also cover the hidden layers)",
                "the thread's second setting (constant 0.001 with sigmoid) is the same snippet with ELU replaced "
                "by Sigmoid and the constant 1 by 0.001 (reconstructed: its code is not in the retrieved text)",
                "the follow-up 'samples = 1' is the same snippet with samples = 5 replaced by samples = 1; the "
                "(samples x 1) kernel is shown only in the semantics variant, on the case's input and random "
                "weights (the thread's code for it is not retrievable)",
                "over seeds: the same snippet with torch.manual_seed(2010) replaced by other seeds (2010, 0, 1, ...)"),
    outputs=("x", "model", "model_conv", "logits", "feats", "logits_conv", "feats_conv"),
    seed_call="torch.manual_seed(2010)",
)

#: (fact key, activation, constant): the thread's two settings, the second made from the first by substitution
_SETTINGS = (("elu_w1", "elu", 1.0), ("sigmoid_w0p001", "sigmoid", 0.001))


def _substituted(pub: Published, pairs: tuple[tuple[str, str], ...], edit: str) -> Published:
    snippet = pub.snippet
    for old, new in pairs:
        if old not in snippet:
            raise RuntimeError(f"{pub.title}: {old!r} not in the snippet")
        snippet = snippet.replace(old, new)
    return replace(pub, snippet=snippet, edits=pub.edits + (edit,))


def _setting(pub: Published, activation: str, value: float) -> Published:
    if activation == "elu" and value == 1.0:
        return pub
    act = {"elu": "ELU", "sigmoid": "Sigmoid"}[activation]
    return _substituted(pub, (("torch.nn.ELU()", f"torch.nn.{act}()"),
                              ("constant_(m.weight, 1)", f"constant_(m.weight, {value:g})"),
                              ("constant_(m.bias, 1)", f"constant_(m.bias, {value:g})")),
                        f"second setting (reconstructed): ELU -> {act}, constant 1 -> {value:g}")


def _thread_params(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    linears = [m for m in model._backbone if isinstance(m, nn.Linear)] + [model._logits]
    return [(m.weight, m.bias) for m in linears]


def _elementwise_rel(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """max |a - b| / |b| over elements with |b| > sqrt(u) max |b| (u of float32): the relative difference as a
    reader of the thread computes it from the two outputs alone (no reference, no bound)."""
    a, b = a.detach().double(), b.detach().double()
    mask = b.abs() > math.sqrt(unit_roundoff(torch.float32)) * float(b.abs().max())
    return float(((a - b).abs()[mask] / b.abs()[mask]).max()) if bool(mask.any()) else None


def _judge_published(ctx: CaseContext, out: CaseOutput, pub: Published, key: str, activation: str,
                     prefix: str, add: bool) -> dict[str, Any]:
    """Run one setting of the thread's code as published and judge Linear vs 1x1 Conv2d on feats and logits
    against the float64 reference and the propagated bound of the snippet's own (rounded) input and parameters."""
    run = run_published(pub, {"__name__": "__main__"})
    model, x = run["model"], run["x"]
    refs, bounds = reference_with_bounds(x, _thread_params(model), activation, torch.float32)
    shown: dict[str, Any] = {}
    for name, lin_name, conv_name, ref, bound in (("feats", "feats", "feats_conv", refs[-2], bounds[-2]),
                                                 ("logits", "logits", "logits_conv", refs[-1], bounds[-1])):
        lo, co = run[lin_name].detach(), run[conv_name].detach()
        desc = (f"gamma_(n+1) propagated through the layers with the activation's Lipschitz constant, + "
                f"{_ACT_ULPS:g} ulps per activation (assumed library accuracy)")
        base = f"{prefix}.{key}.{name}"
        sides = [SideOutput("linear", "Model (Linear)", lo, bound),
                 SideOutput("conv", "ModelConv (1x1 Conv2d)", co, bound)]
        got = judge(out, "published", sides, ref, desc=desc, factor=ctx.bound_factor, keys=(), fact_prefix=base,
                    name=f"published code, {key}: {name}", pair_desc="sum of both sides' bounds: " + desc, add=add)
        pair = got["linear_vs_conv"]
        publish(out, base, pair, _PAIR_KEYS)
        d = (lo.double() - co.double()).abs()
        out.fact(f"{base}.value_max_abs", float(ref.abs().max()))
        out.fact(f"{base}.max_abs_out", float(co.double().abs().max()))
        out.fact(f"{base}.rel_to_magnitude", float(d.max() / co.double().abs().max()))
        out.fact(f"{base}.max_rel_outputs_only", _elementwise_rel(lo, co))
        out.fact(f"{base}.each_side_vs_ref.verdict",
                 worst_verdict([got["linear_vs_ref"].verdict, got["conv_vs_ref"].verdict]))
        shown[name] = {"pair": pair, "vs_ref": [got["linear_vs_ref"], got["conv_vs_ref"]],
                       "rel_to_magnitude": float(d.max() / co.double().abs().max())}
    return {"run": run, "shown": shown}


def _published_summary(out: CaseOutput, prefix: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    pairs = [s["pair"] for r in results for s in r["shown"].values()]
    rels = [c.max_rel for c in pairs if c.max_rel is not None]
    summary = {"verdict": worst_verdict([c.verdict for c in pairs]), "max_rel": max(rels) if rels else None,
               "max_abs": max(c.max_abs for c in pairs),
               "rel_to_magnitude": max(s["rel_to_magnitude"] for r in results for s in r["shown"].values()),
               "bitwise_equal_fraction": min(c.bitwise_equal_fraction for c in pairs)}
    for k, v in summary.items():
        out.fact(f"{prefix}.fwd.{k}", v)
    out.fact(f"{prefix}.fwd.each_side_vs_ref.verdict",
             worst_verdict([c.verdict for r in results for s in r["shown"].values() for c in s["vs_ref"]]))
    return summary


def _published(ctx: CaseContext, out: CaseOutput) -> None:
    """The thread's code first: both settings on the thread's input (or, in a robustness run, on ``ctx.seed``),
    judged like the variants; then the follow-up samples = 1, and (main run) the same protocol over other seeds."""
    robust = getattr(ctx, "robustness_run", False)
    base = PUBLISHED.with_seed(ctx.seed) if robust else PUBLISHED
    results = [_judge_published(ctx, out, _setting(base, act, value), key, act, "published", add=True)
               for key, act, value in _SETTINGS]
    summary = _published_summary(out, "published", results)
    out.fact("published.input_seed", ctx.seed if robust else 2010)
    out.extra["published"] = results[0]["run"].section()
    s1 = _substituted(base, (("samples = 5", "samples = 1"),), "follow-up: samples = 5 replaced by samples = 1")
    follow = [_judge_published(ctx, out, _setting(s1, act, value), key, act, "published.samples1", add=False)
              for key, act, value in _SETTINGS]
    _published_summary(out, "published.samples1", follow)
    rows = [[key, name, s["pair"].max_abs, s["rel_to_magnitude"], s["pair"].max_rel, s["pair"].max_normalised,
             s["pair"].bitwise_equal_fraction, s["pair"].verdict]
            for (key, _, _), r in zip(_SETTINGS, results) for name, s in r["shown"].items()]
    rows += [[f"{key}, samples = 1", name, s["pair"].max_abs, s["rel_to_magnitude"], s["pair"].max_rel,
              s["pair"].max_normalised, s["pair"].bitwise_equal_fraction, s["pair"].verdict]
             for (key, _, _), r in zip(_SETTINGS, follow) for name, s in r["shown"].items()]
    out.add_table(id="published", rows=rows, meta={"input_seed": ctx.seed if robust else 2010})
    if not robust:
        _over_seeds(ctx, out, summary)


def _pairs_only(ctx: CaseContext, pub: Published) -> dict[str, Any]:
    """The published protocol's summary (as :func:`_published_summary`) from the Linear-vs-Conv pairs alone, the
    same comparison judge makes (allowed: both sides' bound), without the side-vs-reference ones."""
    pairs, mags = [], []
    for _, act, value in _SETTINGS:
        run = run_published(_setting(pub, act, value), {"__name__": "__main__"})
        refs, bounds = reference_with_bounds(run["x"], _thread_params(run["model"]), act, torch.float32)
        for lin_name, ref, bound in (("feats", refs[-2], bounds[-2]), ("logits", refs[-1], bounds[-1])):
            lo, co = run[lin_name].detach(), run[f"{lin_name}_conv"].detach()
            pairs.append(compare(lo, co, (bound + bound) * ctx.bound_factor, name=lin_name, actual_label="Linear",
                                 expected_label="1x1 Conv2d", reference=ref))
            mags.append(float((lo.double() - co.double()).abs().max() / co.double().abs().max()))
    rels = [c.max_rel for c in pairs if c.max_rel is not None]
    return {"verdict": worst_verdict([c.verdict for c in pairs]), "max_rel": max(rels) if rels else None,
            "max_abs": max(c.max_abs for c in pairs), "rel_to_magnitude": max(mags)}


def _over_seeds(ctx: CaseContext, out: CaseOutput, first: dict[str, Any]) -> None:
    """The published protocol on other input seeds (2010, then 0, 1, ...): how far the numbers behind
    "negligible relative to magnitude" move with the input alone."""
    n = ctx.params["published_seeds"]
    seeds = [2010] + list(range(n - 1))
    rows, rels, mags = [], [], []
    for seed in seeds:
        s = first if seed == 2010 else _pairs_only(ctx, PUBLISHED.with_seed(seed))
        rows.append([seed, s["max_rel"], s["rel_to_magnitude"], s["max_abs"], s["verdict"]])
        rels.append(s["max_rel"])
        mags.append(s["rel_to_magnitude"])
    known = [r for r in rels if r is not None]
    out.fact("published.seeds.n", len(seeds))
    out.fact("published.seeds.max_rel", rels)
    out.fact("published.seeds.max_rel_min", min(known) if known else None)
    out.fact("published.seeds.max_rel_median", float(statistics.median(known)) if known else None)
    out.fact("published.seeds.max_rel_max", max(known) if known else None)
    out.fact("published.seeds.rel_to_magnitude_max", max(mags))
    out.fact("published.seeds.within_rounding", sum(r[4] in (IDENTICAL, WITHIN) for r in rows))
    out.add_table(id="published_seeds_table", rows=rows, meta={"seeds": len(seeds)})
    out.add_line_plot("published_seeds", series=[
                          {"label": "max rel (elementwise)", "x": list(range(len(seeds))),
                           "y": rels, "style": ""},
                          {"label": "max |delta| / max |out|", "x": list(range(len(seeds))), "y": mags,
                           "style": ""}], yscale="log")


# --- the case ----------------------------------------------------------------------------------------------

#: the metrics of each layer's Linear-vs-Conv2d comparison published as facts (under fwd.<variant>.<layer>)
_PAIR_KEYS = ("max_abs", "max_rel", "max_normalised", "bitwise_equal_fraction", "verdict")
#: the outputs the thread compares: their comparisons go in the report; the hidden layers' are facts only
_SHOWN = ("feats", "logits")


def _models(ctx: CaseContext, v: Variant, dims: list[int], classes: int) -> tuple[LinearModel, ConvModel]:
    factory = _ACTIVATIONS[v.activation][0]
    lin = LinearModel(dims, classes, factory).to(ctx.device, ctx.dtype)
    conv = ConvModel(dims, classes, factory).to(ctx.device, ctx.dtype)
    _fill(lin, v.init)
    _fill(conv, v.init)
    return lin, conv


def _run_variant(ctx: CaseContext, out: CaseOutput, v: Variant, x: torch.Tensor, dims: list[int],
                 classes: int) -> dict[str, Any]:
    lin, conv = _models(ctx, v, dims, classes)
    with torch.no_grad():
        lin_outs = lin.forward_all(x)
        conv_outs = conv.forward_all(x)
    refs, bounds = reference_with_bounds(x, _layer_params(lin), v.activation, ctx.dtype)
    names = [f"layer{i + 1}" for i in range(len(dims) - 1)]
    names[-1] = "feats"
    names.append("logits")
    per_layer = []
    for depth, (name, lo, co, ref, bound) in enumerate(zip(names, lin_outs, conv_outs, refs, bounds), 1):
        desc = (f"gamma_(n+1) propagated through {depth} layer(s) with the activation's Lipschitz "
                f"constant, + {_ACT_ULPS:g} ulps per activation (assumed library accuracy)")
        base = f"fwd.{v.key}.{name}"
        # Both sides share one bound: it depends only on the rounded inputs and parameters.
        sides = [SideOutput("linear", "Linear", lo, bound), SideOutput("conv", "1x1 Conv2d", co, bound)]
        got = judge(out, base, sides, ref, desc=desc, factor=ctx.bound_factor, keys=(), name=f"{v.label}: {name}",
                    pair_desc="sum of both sides' bounds: " + desc, add=name in _SHOWN)
        pair, vs_ref = got["linear_vs_conv"], [got["linear_vs_ref"], got["conv_vs_ref"]]
        ref_max = float(ref.abs().max())
        publish(out, base, pair, _PAIR_KEYS)
        out.fact(f"{base}.value_max_abs", ref_max)
        publish(out, f"{base}.linear_vs_ref", vs_ref[0], ("verdict",))
        publish(out, f"{base}.conv_vs_ref", vs_ref[1], ("verdict",))
        per_layer.append({"name": name, "pair": pair, "vs_ref": vs_ref, "ref_max": ref_max,
                          "delta": (lo.double().cpu() - co.double().cpu())})
    return {"variant": v, "layers": per_layer, "models": (lin, conv), "logits_bound": bounds[-1]}


def _publish_summary(out: CaseOutput, results: list[dict[str, Any]]) -> None:
    """Aggregates over variants and over the two outputs the thread compares (feats, logits)."""
    pairs = [l["pair"] for r in results for l in r["layers"] if l["name"] in _SHOWN]
    norms = [c.max_normalised for c in pairs]
    rels = [c.max_rel for c in pairs if c.max_rel is not None]
    out.fact("fwd.max_normalised", None if any(n is None for n in norms) else max(norms))
    out.fact("fwd.max_rel", max(rels) if rels else None)
    out.fact("fwd.max_abs", max(c.max_abs for c in pairs))
    out.fact("fwd.value_max_abs", max(l["ref_max"] for r in results for l in r["layers"]))
    out.fact("fwd.bitwise_equal_fraction", min(c.bitwise_equal_fraction for c in pairs))
    out.fact("fwd.verdict", worst_verdict([c.verdict for c in pairs]))
    out.fact("fwd.each_side_vs_ref.verdict",
             worst_verdict([c.verdict for r in results for l in r["layers"] for c in l["vs_ref"]]))


def _layer_table_and_plots(out: CaseOutput, results: list[dict[str, Any]]) -> None:
    rows = []
    rel_series, norm_series, mag_series = [], [], []
    for r in results:
        v: Variant = r["variant"]
        xs = list(range(1, len(r["layers"]) + 1))
        for layer in r["layers"]:
            c: Comparison = layer["pair"]
            rows.append([v.label, layer["name"], layer["ref_max"], c.max_abs, c.max_rel, c.median_rel,
                         c.max_normalised, c.bitwise_equal_fraction, c.verdict])
        rel_series.append({"label": v.label, "x": xs, "y": [l["pair"].max_rel for l in r["layers"]], "style": ""})
        norm_series.append({"label": v.label, "x": xs, "y": [l["pair"].max_normalised for l in r["layers"]],
                            "style": ""})
        mag_series.append({"label": v.label, "x": xs, "y": [l["ref_max"] for l in r["layers"]], "style": ""})
    names = ", ".join(f"{i + 1}={l['name']}" for i, l in enumerate(results[0]["layers"]))
    out.add_table(id="per_layer", rows=rows)
    out.add_line_plot("rel_per_layer", series=rel_series, yscale="log", meta={"layers": names})
    out.add_line_plot("normalised_per_layer", series=norm_series + [
                          {"label": "bound", "x": list(range(1, len(results[0]["layers"]) + 1)),
                           "y": [1.0] * len(results[0]["layers"]), "style": "bound"}], yscale="log",
                      meta={"layers": names})
    out.add_line_plot("magnitude_per_layer", series=mag_series, yscale="log", meta={"layers": names})
    first = results[0]
    h = log10_abs_histogram(first["layers"][-1]["delta"])
    out.add_histogram("logits_delta_hist", hists=[{"label": "logits", **h}],
                      meta={"variant": first["variant"].label, "zeros": h["zeros"], "total": h["total"]})


# --- the thread's semantics point --------------------------------------------------------------------------

def _shape(t: torch.Tensor) -> str:
    return "x".join(str(s) for s in t.shape)


def _linear_pair(ctx: CaseContext, out: CaseOutput, a: torch.Tensor, b: torch.Tensor, x: torch.Tensor,
                 w: torch.Tensor, bias: torch.Tensor, name: str, labels: tuple[str, str]) -> Comparison:
    """Two routes to F.linear(x, w, bias), allowed the sum of both sides' gamma_(n+1)(|x||W|+|b|); the float64
    product decides which elements are near zero. One comparison with facts of its own (no side-vs-reference
    comparisons), so compare rather than engine.judge."""
    bound = 2 * ctx.bound_factor * matmul_bound(x.cpu(), w.cpu().T, ctx.dtype, bias=bias.cpu())
    ref = F.linear(x.double(), w.double(), bias.double()).cpu()
    return out.add_comparison(compare(a, b, bound, name=name, actual_label=labels[0], expected_label=labels[1],
                                      reference=ref, bound_desc="sum of both sides' gamma_(n+1)(|x||W|+|b|)"),
                              group="semantics")


def _semantics(ctx: CaseContext, out: CaseOutput, x: torch.Tensor, c_out: int) -> None:
    """1x1 conv = the same Linear at every position; a (samples x 1) kernel = flatten + one Linear."""
    batch, samples, c_in = x.shape
    gen = ctx.generator(1)
    w = ctx.randn(c_out, c_in, gen=gen) * c_in ** -0.5
    b = ctx.randn(c_out, gen=gen) * c_in ** -0.5
    x4 = x.unsqueeze(3).permute(0, 2, 1, 3)  # (batch, c_in, samples, 1)
    with torch.no_grad():
        lin = F.linear(x, w, b)
        conv = F.conv2d(x4, w[:, :, None, None], b)
        c1 = _linear_pair(ctx, out, lin, conv.squeeze(3).permute(0, 2, 1), x, w, b,
                          "1x1 conv vs per-position Linear (random W)", ("Linear at each position", "1x1 Conv2d"))
        # Locality: perturbing sample 0 must leave every other position's output bit for bit unchanged.
        x_p = x.clone()
        x_p[:, 0, :] += 1
        conv_p = F.conv2d(x_p.unsqueeze(3).permute(0, 2, 1, 3), w[:, :, None, None], b)
        others_same = torch.equal(conv_p[:, :, 1:], conv[:, :, 1:]) if samples > 1 else True
        first_changed = not torch.equal(conv_p[:, :, :1], conv[:, :, :1])

        wk = ctx.randn(c_out, c_in, samples, 1, gen=gen) * (c_in * samples) ** -0.5
        conv_k = F.conv2d(x4, wk, b)  # (batch, c_out, 1, 1): one output per sample sequence
        flat = x.permute(0, 2, 1).reshape(batch, c_in * samples)  # index c*samples + s, as wk.reshape below
        lin_k = F.linear(flat, wk.reshape(c_out, c_in * samples), b)
        c2 = _linear_pair(ctx, out, conv_k.reshape(batch, c_out), lin_k, flat, wk.reshape(c_out, -1), b,
                          "(samples x 1) kernel vs flatten + Linear",
                          ("Conv2d kernel (samples, 1)", "flatten + Linear"))
    publish(out, "semantics.conv1x1_vs_linear", c1, ("verdict",))
    out.fact("semantics.conv1x1_per_position", bool(others_same and first_changed))
    out.fact("semantics.conv1x1.out_shape", _shape(conv))
    publish(out, "semantics.kernel_sx1_vs_flatten_linear", c2, ("verdict", "max_normalised"))
    out.fact("semantics.kernel_sx1.out_shape", _shape(conv_k))
    out.add_table(id="semantics", rows=[["Linear(C, out)", _shape(x), _shape(w), _shape(lin), "no: same W at each position"],
                   ["Conv2d(C, out, 1) on permuted input", _shape(x4), _shape(w[:, :, None, None]), _shape(conv),
                    "no" if others_same else "yes (measured: other positions changed)"],
                   ["Conv2d(C, out, (samples, 1))", _shape(x4), _shape(wk), _shape(conv_k), "yes: one output"],
                   ["flatten + Linear(C*samples, out)", _shape(flat), _shape(wk.reshape(c_out, -1)),
                    _shape(lin_k), "yes: one output"]])


def _checked(p: Mapping[str, Any]) -> tuple[list[int], int, int, int, list[Variant]]:
    dims = [_ints([p["input_dim"]], "input_dim")[0]] + _ints(p["widths"], "widths")
    classes = _ints([p["num_classes"]], "num_classes")[0]
    batch, samples = _ints([p["batch_size"], p["samples"]], "batch_size/samples")
    return dims, classes, batch, samples, _variants(p["variants"])


def _validate(p: Mapping[str, Any]) -> None:
    _checked(p)
    _ints([p["published_seeds"]], "published_seeds")


FACTS = schema(
    EXPLAIN_FACTS,
    # fwd.<metric>: over variants and the shown outputs; fwd.<variant>.<layer>.<metric>: one layer's pair
    comparison_facts("fwd", _PAIR_KEYS + ("value_max_abs",)), comparison_facts("fwd.each_side_vs_ref", ("verdict",)),
    comparison_facts("fwd.*.*", _PAIR_KEYS + ("value_max_abs",)), comparison_facts("fwd.*.*.*_vs_ref", ("verdict",)),
    FactSpec("semantics.conv1x1_per_position", BOOL), FactSpec("semantics.*.out_shape", STR),
    comparison_facts("semantics.conv1x1_vs_linear", ("verdict",)),
    comparison_facts("semantics.kernel_sx1_vs_flatten_linear", ("verdict", "max_normalised")),
    # the thread's code as published: published[.samples1].<setting>.<feats|logits>.<metric> and the worst over
    # settings and outputs, published[.samples1].fwd.<metric>; published.seeds.*: the same over input seeds
    *[spec for pre in ("published", "published.samples1") for spec in (
        comparison_facts(f"{pre}.*.*", _PAIR_KEYS + ("value_max_abs",)),
        facts(f"{pre}.*.*", ["max_abs_out", "rel_to_magnitude", "max_rel_outputs_only"], NUMBER),
        comparison_facts(f"{pre}.*.*.each_side_vs_ref", ("verdict",)),
        comparison_facts(f"{pre}.fwd", ("verdict", "max_rel", "max_abs", "bitwise_equal_fraction")),
        facts(f"{pre}.fwd", ["rel_to_magnitude"], NUMBER),
        comparison_facts(f"{pre}.fwd.each_side_vs_ref", ("verdict",)))],
    FactSpec("published.input_seed", NUMBER), FactSpec("published.seeds.max_rel", LIST),
    facts("published.seeds", ["n", "max_rel_min", "max_rel_median", "max_rel_max", "rel_to_magnitude_max",
                              "within_rounding"], NUMBER),
)


@register("fc_vs_conv2d_1x1",
          "Linear MLP vs the same MLP as 1x1 Conv2d (forum thread): absolute/relative differences per layer "
          "against a float64 reference and rounding bound, and what 1x1 vs (samples x 1) kernels compute.",
          facts=FACTS, defaults=DEFAULTS, validate=_validate)
def run(ctx: CaseContext) -> CaseOutput:
    dims, classes, batch, samples, variants = _checked(ctx.params)
    out = ctx.output()
    ctx.progress("the thread's code, as published")
    _published(ctx, out)
    x = ctx.randn(batch, samples, dims[0], gen=ctx.generator(0))
    results = []
    for v in variants:
        ctx.progress(f"forward {v.label}")
        results.append(_run_variant(ctx, out, v, x, dims, classes))
    _publish_summary(out, results)
    _layer_table_and_plots(out, results)
    ctx.progress("semantics: 1x1 vs (samples x 1) kernels")
    _semantics(ctx, out, x, dims[1])
    if not getattr(ctx, "robustness_run", False):  # kernels and determinism: once, on the main run
        _why(ctx, out, results[0], x)
    _notes(out, results)
    return out


def _why(ctx: CaseContext, out: CaseOutput, first: dict[str, Any], x: torch.Tensor) -> None:
    """Which implementation each model ran, and whether each is reproducible (kernels + determinism sections).

    Sides are the two whole models' logits for the first variant (the thread's setting), on the case's input; the
    bound is the logits' propagated rounding bound from :func:`reference_with_bounds`, the same for both sides
    since it depends only on the rounded inputs and parameters.
    """
    lin, conv = first["models"]
    sides = {"Linear MLP": lambda: lin.forward_all(x)[-1], "1x1 Conv2d MLP": lambda: conv.forward_all(x)[-1]}
    out.explain(ctx, sides, ctx.bound_factor * first["logits_bound"])
    out.note(f"Kernels and determinism: both models' logits for {first['variant'].label} on the case's input; "
             "differences are in units of the logits' propagated rounding bound (summed over the two sides for the "
             "pair).")


def _g(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2g}"


def _notes(out: CaseOutput, results: list[dict[str, Any]]) -> None:
    for r in results:
        logits = r["layers"][-1]
        c: Comparison = logits["pair"]
        out.note(f"{r['variant'].label}: logits reach {logits['ref_max']:.3g} in magnitude; Linear and 1x1 Conv2d "
                 f"differ there by up to {c.max_abs:.3g} absolute, i.e. {_g(c.max_rel)} relative ({c.verdict}; "
                 f"{_g(c.max_normalised)} of the rounding bound; n/a where the bound is vacuous, n*u >= 1).")
    out.note("Rounding bound per layer: gamma_(n+1)(|W|(|a|+e)+|b|) + |W|e with e the previous layer's bound, carried "
             "through the activation with its Lipschitz constant (ELU 1, sigmoid 1/4) plus an allowance of "
             f"{_ACT_ULPS:g} ulps for the activation's own rounding (an assumption about the math library, not a "
             "theorem).")
