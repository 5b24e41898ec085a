"""The words around a case's data: plot titles, axis labels, table titles, column headings and notes.

Cases store data (a plot's series, a table's rows) under a stable id; the text that explains it lives here, keyed
by (case kind, plot or table id), so re-rendering an archived run picks up today's wording. An entry's strings may
be ``str.format`` templates filled from the result's ``params`` and the plot's or table's own ``meta`` dict (numbers
the case stored for the text: a layer count, a learning rate). Where the registry has no entry (results written
before the registry, plugin kinds) or a template cannot be filled (an old archive without the ``meta`` it names),
the renderer shows what the archive stored.

Only items the case stored under the view convention (``"views": 1``, set by CaseOutput) take the registry's text:
archives written before it reuse the same plot ids for other data (results_v1.json's ``growth_depth`` is the
variance-preserving stack), and must keep the words they were written with.

Plain data and the standard library only: rendering an archive must not import torch.
"""

from __future__ import annotations

import copy
import fnmatch
import string
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class PlotView:
    title: str = ""
    xlabel: str = ""
    ylabel: str | None = None  # None: the stored one (histograms store "count")
    note: str = ""


@dataclass(frozen=True)
class TableView:
    title: str = ""
    columns: tuple[str, ...] | None = None  # None: the stored headings
    note: str = ""


#: the key and value CaseOutput stores on each plot and table: "my text is the view registry's"
MARK, MARK_VERSION = "views", 1

#: (kind, id) -> view; an id may be an fnmatch pattern ("train_*") for ids the case builds from a loop variable.
#: Exact ids win over patterns.
VIEWS: dict[tuple[str, str], PlotView | TableView] = {}


def _fill(template: str, values: Mapping[str, Any]) -> str | None:
    """``template`` filled from ``values``; None when it names a value that is missing or does not format."""
    try:
        return string.Formatter().vformat(template, (), values)
    except (KeyError, IndexError, ValueError, TypeError, AttributeError):
        return None


def lookup(kind: str, item_id: Any, want: type = object) -> Any:
    """The registry's view (of type ``want``: PlotView or TableView) for a plot or table id of ``kind``, or None."""
    if not isinstance(item_id, str) or not item_id:
        return None
    exact = VIEWS.get((kind, item_id))
    if isinstance(exact, want):
        return exact
    for (k, pattern), view in sorted(VIEWS.items(), key=lambda kv: kv[0]):
        if (k == kind and isinstance(view, want) and any(c in pattern for c in "*?[")
                and fnmatch.fnmatchcase(item_id, pattern)):
            return view
    return None


def _values(case: Mapping[str, Any], item: Mapping[str, Any]) -> dict[str, Any]:
    params = case.get("params") if isinstance(case.get("params"), dict) else {}
    meta = item.get("meta") if isinstance(item.get("meta"), dict) else {}
    return {"seed": case.get("seed"), **params, **meta}


def _text(template: str | None, stored: Any, values: Mapping[str, Any]) -> str:
    fallback = stored if isinstance(stored, str) else ("" if stored is None else str(stored))
    if not template:  # the view says nothing here: what the case stored (a note built from measured values)
        return fallback
    filled = _fill(template, values)
    if filled is None:  # e.g. an archive written before the case stored the meta this wording uses
        return fallback or template
    return filled


def view_plot(case: Mapping[str, Any], plot: dict[str, Any]) -> dict[str, Any]:
    """``plot`` with its title, axis labels and note from the registry where it has an entry (a new dict)."""
    out = dict(plot)
    # histograms count elements: add_histogram stored "count" before it stored no text at all
    out.setdefault("ylabel", "count" if plot.get("kind") == "hist" else "")
    view = lookup(str(case.get("kind", "")), plot.get("id"), PlotView) if plot.get(MARK) == MARK_VERSION else None
    if not isinstance(view, PlotView):
        for key in ("title", "xlabel", "note"):
            out.setdefault(key, "")
        return out
    values = _values(case, plot)
    out["title"] = _text(view.title, plot.get("title"), values)
    out["xlabel"] = _text(view.xlabel, plot.get("xlabel"), values)
    out["ylabel"] = _text(view.ylabel, out["ylabel"], values)
    out["note"] = _text(view.note, plot.get("note"), values)
    return out


def view_table(case: Mapping[str, Any], table: dict[str, Any]) -> dict[str, Any]:
    """``table`` with its title, headings and note from the registry where it has an entry (a new dict)."""
    out = dict(table)
    view = lookup(str(case.get("kind", "")), table.get("id"), TableView) if table.get(MARK) == MARK_VERSION else None
    if not isinstance(view, TableView):
        for key in ("title", "note"):
            out.setdefault(key, "")
        out.setdefault("columns", [])
        return out
    values = _values(case, table)
    out["title"] = _text(view.title, table.get("title"), values)
    out["note"] = _text(view.note, table.get("note"), values)
    if view.columns is not None:
        heads = [_text(c, None, values) for c in view.columns]
        stored = table.get("columns")
        rows = table.get("rows") if isinstance(table.get("rows"), list) else []
        width = len(rows[0]) if rows and isinstance(rows[0], list) else len(heads)
        # Headings that do not fit the stored rows (an archive from a case version with other columns) would
        # mislabel every cell: keep the stored ones then.
        out["columns"] = heads if len(heads) == width or not isinstance(stored, list) else stored
    else:
        out.setdefault("columns", [])
    return out


def apply_views(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of a results dict whose cases' plots and tables carry the registry's text (the input is unchanged:
    the report embeds the archive as stored)."""
    out = copy.copy(data)
    cases = data.get("cases")
    if not isinstance(cases, list):
        return out
    new_cases = []
    for case in cases:
        if not isinstance(case, dict):
            new_cases.append(case)
            continue
        c = dict(case)
        if isinstance(case.get("plots"), list):
            c["plots"] = [view_plot(case, p) if isinstance(p, dict) else p for p in case["plots"]]
        if isinstance(case.get("tables"), list):
            c["tables"] = [view_table(case, t) if isinstance(t, dict) else t for t in case["tables"]]
        new_cases.append(c)
    out["cases"] = new_cases
    return out


def register(kind: str, item_id: str, view: PlotView | TableView) -> None:
    """Add or replace a view (plugins may describe their own plots and tables)."""
    VIEWS[(kind, item_id)] = view


# --- the bundled cases -------------------------------------------------------------------------------------------

_DEPTH_COLUMNS = None  # the depth tables keep their headings in the case: one column exists only where computed

# each depth plot and the table of its numbers carry one title
_DEPTH_TITLE = ("Growth with depth, the stack the answer implies (default init, input ({batch}, {length}, "
                "{in_features}))")
_DEPTH_VP_TITLE = ("Variant: growth with depth, variance-preserving init (width-{growth_width} layers, {batches} × "
                   "{rows_per_batch} rows)")

_BUNDLED: dict[tuple[str, str], PlotView | TableView] = {
    # linear_vs_conv1d --------------------------------------------------------------------------------------------
    ("linear_vs_conv1d", "diff_hist"): PlotView(
        title="Linear − Conv1d: distribution of log₁₀|Δ| (exact zeros counted apart)",
        xlabel="log₁₀ |Linear − Conv1d|"),
    ("linear_vs_conv1d", "growth_depth"): PlotView(
        title=_DEPTH_TITLE,
        xlabel="depth L (layers)", ylabel="max |error|",
        note="Each layer nn's default initialisation under the seed, the Linear given the Conv1d's parameters as "
             "in the answer's code. With this init the outputs shrink with depth (gain about 1/√3 per layer), and "
             "the absolute difference with them: read it also relative to the output's magnitude."),
    ("linear_vs_conv1d", "growth_depth_table"): TableView(
        title=_DEPTH_TITLE,
        columns=_DEPTH_COLUMNS),
    ("linear_vs_conv1d", "growth_depth_vp"): PlotView(
        title=_DEPTH_VP_TITLE,
        xlabel="depth L (layers)", ylabel="max |error|",
        note="Not the answer's stack: U(-√(3/w), √(3/w)) weights keep the activations' magnitude, so depth changes "
             "the number of roundings only. The rigorous bound compounds |W| at every layer and soon says nothing; "
             "the accumulated per-layer rounding is the scale to read the differences against."),
    ("linear_vs_conv1d", "growth_depth_vp_table"): TableView(
        title=_DEPTH_VP_TITLE,
        columns=_DEPTH_COLUMNS),
    ("linear_vs_conv1d", "growth_k"): PlotView(
        title="Max error vs in_features K (one layer, {batches} × {rows_per_batch} rows)",
        xlabel="K (in_features)", ylabel="max |error|"),
}
_BUNDLED.update({
    # fc_vs_conv2d_1x1 --------------------------------------------------------------------------------------------
    ("fc_vs_conv2d_1x1", "published"): TableView(
        title="The thread's code as published: Model (Linear) vs ModelConv (1x1 Conv2d)",
        columns=("setting", "output", "max |delta|", "max |delta| / max |out|", "max rel (elementwise)",
                 "max |delta|/bound", "bitwise equal", "verdict"),
        note="Input: torch.manual_seed({input_seed}); torch.randn(16, 5, 256) (samples = 1: torch.randn(16, 1, 256)). "
             "The elementwise relative difference leaves out elements whose |reference| is within its bound or "
             "below sqrt(u) max |reference|."),
    ("fc_vs_conv2d_1x1", "published_seeds_table"): TableView(
        title="The thread's code on {seeds} input seeds (2010 is the thread's)",
        columns=("seed", "max rel (elementwise)", "max |delta| / max |out|", "max |delta|", "verdict"),
        note="Worst over both settings and both outputs (feats, logits). The elementwise relative difference is "
             "set by the few elements whose value is small against the output's largest; relative to the output's "
             "magnitude the difference stays a few float32 ulps."),
    ("fc_vs_conv2d_1x1", "published_seeds"): PlotView(
        title="The thread's code over input seeds: relative difference Linear vs 1x1 Conv2d",
        xlabel="seed index (0 = the thread's 2010)", ylabel="relative difference"),
    ("fc_vs_conv2d_1x1", "per_layer"): TableView(
        title="Linear vs 1x1 Conv2d per layer (difference vs the magnitude of the values)",
        columns=("variant", "output", "max |reference|", "max |delta|", "max rel", "median rel",
                 "max |delta|/bound", "bitwise equal", "verdict"),
        note="delta = Linear - 1x1 Conv2d. Relative error leaves out elements whose |reference| is below the bound "
             "(cancellation). |delta|/bound <= 1 means the difference is explained by rounding."),
    ("fc_vs_conv2d_1x1", "rel_per_layer"): PlotView(
        title="Relative difference Linear vs 1x1 Conv2d, per layer", xlabel="layer ({layers})",
        ylabel="max |delta| / |reference|",
        note="A value of exactly 0 (bitwise identical layer) falls off the bottom of the log scale."),
    ("fc_vs_conv2d_1x1", "normalised_per_layer"): PlotView(
        title="Difference in units of the rounding bound, per layer", xlabel="layer ({layers})",
        ylabel="max |delta| / bound",
        note="Below 1: within what any summation order may produce; 0 falls off the log scale."),
    ("fc_vs_conv2d_1x1", "magnitude_per_layer"): PlotView(
        title="Magnitude of the values, per layer", xlabel="layer ({layers})",
        ylabel="max |value| (float64 reference)"),
    ("fc_vs_conv2d_1x1", "logits_delta_hist"): PlotView(
        title="{variant}: |Linear - Conv| on the logits", xlabel="log10 |delta|",
        note="{zeros} of {total} elements are exactly equal (not shown)."),
    ("fc_vs_conv2d_1x1", "semantics"): TableView(
        title="What each layer computes on input (batch, samples, features) with samples > 1",
        columns=("layer", "input shape", "weight shape", "output shape", "mixes positions?"),
        note="'mixes positions' for the 1x1 conv is measured: sample 0 of the input is perturbed and the outputs at "
             "the other positions are checked bit for bit."),
})
_BUNDLED.update({
    # shared_kernel_conv ------------------------------------------------------------------------------------------
    ("shared_kernel_conv", "published"): TableView(
        title="The published example",
        columns=("comparison", "bitwise equal", "max |Δ|", "max |Δ| / bound")),  # its note is the case's: measured
    ("shared_kernel_conv", "published_step"): TableView(
        title="Averaging the repeated weights after one step, on the published example",
        columns=("optimizer", "max |averaged − shared step|", "max |shared step|", "ratio"),
        note="One step from kernel's values with the published loss .mean(). With SGD the averaged step is the mean "
             "of the per-copy gradients, 1/C of the shared kernel's summed one. One Adam step moves every weight by "
             "about lr·sign(gradient), the same for the average of the copies wherever the copies' gradients share "
             "a sign (here every input is positive)."),
    ("shared_kernel_conv", "train_*"): PlotView(
        title="{optimizer} lr={lr:g}: distance of the kernel from the float64 shared-kernel trajectory",
        xlabel="step", ylabel="‖w − w_fp64‖ / ‖w_fp64 − w₀‖",
        note="Relative to how far the exact trajectory has moved from the start; exact zeros are left out of the "
             "log axis. (b) is dashed: where it hides (a), the two trajectories are the same."),
    ("shared_kernel_conv", "train"): TableView(
        title="Training the shared kernel: distance from the float64 trajectory after k steps",
        columns=("optimizer", "k", "(a) shared kernel", "(b) repeated, gradients summed",
                 "repeated, weights averaged after the step", "loss (float64)", "loss (a)", "loss (averaged)"),
        note="Distances are ‖w − w_fp64‖ / ‖w_fp64 − w₀‖ after k steps on one fixed batch ({train_batch}, "
             "{channels}, {train_size}, {train_size}) whose target comes from a known kernel. (a) and (b)-summed "
             "should sit at rounding level; averaging the copies makes an SGD step {channels}× too small "
             "(C = {channels} channels) and replaces Adam's step by the mean of per-copy Adam steps."),
})

_DRIFT_COLUMNS = ("optimizer", "steps", "final max|Δparam|", "final max|param|", "relative", "relative / u",
                  "final max|Linear − fp64|", "final max|Conv1d − fp64|", "Δparam / max(fp32 − fp64)", "max |Δloss|",
                  "max |Δloss| / max(|loss|, |loss₁|)", "steps bitwise equal", "trend")
_DRIFT_NOTE = ("Trend: 'rounding level' when max|Δparam|/max|param| stays ≤ {rounding_level_u:g}·u, 'grows' when "
               "the last decade of steps reaches ≥ {growth:g}× the previous decade's maximum, else 'saturates'.")
_BUNDLED.update({
    # optimizer_drift ---------------------------------------------------------------------------------------------
    ("optimizer_drift", "published"): TableView(
        title="One Adam step (lr 0.5): the published protocol and the case's variant",
        columns=("protocol", "seeds", "max |Δ| ≤ 1e-6", "max |Δ| ≤ 1e-7", "bitwise equal", "median max|Δ|",
                 "max max|Δ|"),
        note="Claims are judged on the first row (the post's code, reconstructed, run with {threads} intra-op "
             "thread(s)); fractions are of seeds, max |Δ| is over all weights and biases of one seed."),
    ("optimizer_drift", "threads"): TableView(
        title="Thread count: one Adam step with {threads} vs {other} intra-op thread(s)",
        columns=("seeds", "Linear: bitwise same params", "Conv1d: bitwise same params"),
        note="Fractions of seeds whose parameters after the step are bitwise identical under both thread counts. "
             "Below 1 means the kernel (and so its rounding) depends on the thread count: Linear-vs-Conv1d numbers "
             "from another machine need not match these."),
    ("optimizer_drift", "onestep_hist"): PlotView(
        title="One Adam step (lr={onestep_lr:g}): max |Δparam| per seed over {seeds} seeds",
        xlabel="log₁₀ max |Δparam| (exact zeros counted apart)"),
    ("optimizer_drift", "onestep"): TableView(
        title="One Adam step over seeds (the case's variant: input as (N, C, L), parameters drawn by the case)",
        columns=("seeds", "max |Δ| ≤ 1e-6", "max |Δ| ≤ 1e-7", "bitwise equal", "median max|Δ|", "max max|Δ|",
                 "max max|Δ| / (u·max|param|)", "max |Linear − fp64|", "max |Conv1d − fp64|"),
        note="Fractions are of seeds; max |Δ| is over all weights and biases of one seed."),
})
for _key, _name in (("published", "published loss output.sum(2).mean()"), ("mse", "MSE to a fixed teacher")):
    _BUNDLED.update({
        ("optimizer_drift", f"drift_{_key}_dparam"): PlotView(
            title=f"Linear vs Conv1d, {_name}: max |Δparam| per step", xlabel="step",
            ylabel="max |Linear − Conv1d| over parameters",
            note="Exact zeros cannot be drawn on a log axis and are left out."),
        ("optimizer_drift", f"drift_{_key}_dloss"): PlotView(
            title=f"Linear vs Conv1d, {_name}: |Δloss| per step", xlabel="step",
            ylabel="|loss(Linear) − loss(Conv1d)|", note="Loss of each model on the step's batch, before the update."),
        ("optimizer_drift", f"drift_{_key}_table"): TableView(
            title=f"Drift over many steps, {_name}", columns=_DRIFT_COLUMNS, note=_DRIFT_NOTE),
    })
_BUNDLED.update({
    # conv1d_semantics --------------------------------------------------------------------------------------------
    ("conv1d_semantics", "shapes"): TableView(
        title="Output shapes of the page's examples",
        columns=("module", "input", "output (measured)", "formula floor((L+2p-d(k-1)-1)/s+1)", "page says",
                 "page right?"),
        note="'page says' is what the MindSpore page prints for Conv1d(120, 240, 4) on (1, 120, 640); it is shown "
             "only when this run uses those sizes."),
    ("conv1d_semantics", "padding_modes"): TableView(
        title="Each padding_mode against explicit F.pad + unpadded conv",
        columns=("padding_mode", "padding", "F.pad mode", "output length", "bitwise equal", "max |delta|",
                 "verdict"),
        note="The last row is a negative control: reflect-padded conv against an explicit zero pad must differ, or "
             "the comparison could not tell the modes apart."),
    ("conv1d_semantics", "same_split_table"): TableView(
        title="padding='same': measured left/right split (Conv1d)",
        columns=("kernel", "dilation", "total pad d(k-1)", "total", "left", "right", "extra pad on",
                 "= F.pad(left, right) + valid conv, bitwise", "mirrored split differs"),
        note="left/right located with one-hot weights on an input 1..L; then checked on random data: "
             "padding='same' equals explicit F.pad with the measured split bit for bit, and (for asymmetric "
             "splits) differs from the mirrored split."),
    ("conv1d_semantics", "same_split"): PlotView(
        title="padding='same': right pad minus left pad (Conv1d)",
        xlabel="total padding d(k-1) (every kernel and dilation measured)", ylabel="right - left (zeros)",
        note="+1: the extra zero of an odd total goes on the right; -1: on the left; 0: symmetric."),
    ("conv1d_semantics", "same_split_2d"): TableView(
        title="padding='same': measured split (Conv2d, square kernels)",
        columns=("kernel", "dilation", "top", "bottom", "left", "right", "extra pad on")),
    ("conv1d_semantics", "init_fit"): TableView(
        title="Initial weights and biases vs U(-sqrt(k), sqrt(k)): Kolmogorov-Smirnov",
        columns=("parameter", "samples", "k", "max |value| / sqrt(k)", "KS statistic", "p-value", "result"),
        note="Pooled over {modules} freshly constructed modules per row. 'fits' means p-value >= "
             "{per_test_alpha:g} ({alpha:g} / 4 tests, Bonferroni); the control rows must be rejected for the test "
             "to mean anything."),
    ("conv1d_semantics", "init_density"): PlotView(
        title="Initial values divided by sqrt(k) (groups=1): empirical density", xlabel="value / sqrt(k)",
        ylabel="density", note="U(-sqrt(k), sqrt(k)) predicts a flat 0.5 between -1 and 1 and nothing outside."),
    ("conv1d_semantics", "layout"): TableView(
        title="Weight layout conversion torch <-> MindSpore",
        columns=("step", "shape", "bitwise equal to the original")),
})
_BUNDLED.update({
    # conv1d_cross_framework --------------------------------------------------------------------------------------
    ("conv1d_cross_framework", "same_padding"): TableView(
        title="'same' padding, left / right, stride 1 (measured with a one-hot kernel)",
        columns=("kernel", "dilation", "total", "PyTorch padding='same'", "MindSpore pad_mode='same'", "JAX 'SAME'",
                 "JAX 'SAME_LOWER'"),
        note="Input x = 1..L and a kernel that is 1 at tap 0: the output is the padded input, so the first non-zero "
             "output gives the left padding."),
    ("conv1d_cross_framework", "init"): TableView(
        title="Default initialisation: Kolmogorov–Smirnov goodness of fit",
        columns=("framework", "parameter", "hypothesis", "n", "KS statistic", "p-value", "verdict"),
        note="Default-initialised Conv1d({init_in_channels}, {init_out_channels}, {init_kernel_size}, bias on), "
             "seed {seed}; fan_in = in_channels × kernel_size."),
    ("conv1d_cross_framework", "examples"): TableView(
        title="The page's code examples, run as published: what each prints",
        columns=("code example", "the page says", "PyTorch printed", "MindSpore printed"),
        note="Each half of each example is the page's own text, run as published: PyTorch here, MindSpore by the "
             "probe in its own interpreter (their text is under 'The published code, as run')."),
})

VIEWS.update(_BUNDLED)
