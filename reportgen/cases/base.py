"""What a case receives (CaseContext) and what it returns (CaseOutput)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import torch

from reportgen.facts import FactSchema
from reportgen.measure.numerics import Comparison
from reportgen.measure.timing import TimingResult


class CaseSkipped(Exception):
    """Raise from a case when it cannot run here (no CUDA, dtype unsupported...); the message is the reason."""


@dataclass(frozen=True)
class CaseInfo:
    name: str
    description: str
    run: Callable[["CaseContext"], "CaseOutput"]
    defaults: Mapping[str, Any]
    #: checks a case's params (defaults merged) when the suite loads, raising UsageError: a bad value is then an
    #: exit-2 error naming the suite file, not a case error after the run has started
    validate: Callable[[Mapping[str, Any]], None] | None = None
    #: normalises a case's params when the suite loads, given the suite file's folder (None from the API):
    #: resolves and checks code references (kind: pair), raising UsageError
    prepare: Callable[[Mapping[str, Any], Any], Mapping[str, Any]] | None = None
    #: the facts the kind publishes (reportgen.facts): CaseOutput.fact refuses others, and a claim naming one
    #: the kind does not declare fails when the suite loads
    facts: FactSchema = FactSchema()
    #: where the kind comes from: "reportgen" (bundled) or the distribution of a plugin
    origin: str = "reportgen"


@dataclass(frozen=True)
class CaseContext:
    """Everything a case may use: its (validated, defaulted) params, device, dtype, seed, tolerances."""

    name: str
    params: Mapping[str, Any]
    device: torch.device
    dtype: torch.dtype
    seed: int
    timing_rounds: int = 7
    timing_min_sample_s: float = 0.02
    timing_enabled: bool = True
    bound_factor: float = 1.0
    noise_iqr: float = 0.10
    # Other frameworks' interpreters for cross-framework probes: {"mindspore": "/path/to/python", ...}
    frameworks: Mapping[str, str] = field(default_factory=dict)
    progress: Callable[[str], None] = lambda msg: None
    #: the declared facts of the case's kind; None (a case run outside a suite) checks nothing
    facts: FactSchema | None = None
    #: True when the runner reruns the case with another seed only to judge its claims' robustness (suite key
    #: ``robustness``): timing is already off; a case may also skip work no claim reads and the seed cannot change
    #: (kernel capture, determinism matrix, cross-framework probes). Only the facts of such a run are kept.
    robustness_run: bool = False

    def output(self) -> "CaseOutput":
        """A CaseOutput that refuses facts the case's kind does not declare."""
        return CaseOutput(schema=self.facts, kind=self.name)

    def generator(self, offset: int = 0) -> torch.Generator:
        """A CPU generator seeded from the case seed (draw on CPU, then move: same numbers on every device)."""
        return torch.Generator().manual_seed(self.seed + offset)

    @contextlib.contextmanager
    def global_rng(self, offset: int = 0) -> Iterator[None]:
        """The global RNGs seeded with ``seed + offset`` for the block (for code that draws from them, such as
        nn modules' default init), then restored: the CPU one and, on CUDA, the case device's.

        ``torch.manual_seed`` seeds every CUDA device too, which ``fork_rng(devices=[])`` would not restore."""
        devices = []
        if self.device.type == "cuda":
            devices = [self.device.index if self.device.index is not None else torch.cuda.current_device()]
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed + offset)
            yield

    def randn(self, *shape: int, gen: torch.Generator, dtype: torch.dtype | None = None) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float64).to(dtype or self.dtype).to(self.device)


@dataclass
class CaseOutput:
    """Builder for a case's results; the runner turns it into a CaseResult."""

    comparisons: list[dict[str, Any]] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)
    plots: list[dict[str, Any]] = field(default_factory=list)
    timings: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    schema: FactSchema | None = field(default=None, repr=False)
    kind: str = field(default="", repr=False)

    def add_comparison(self, comparison: Comparison, group: str = "") -> Comparison:
        d = comparison.to_dict()
        d["group"] = group
        self.comparisons.append(d)
        return comparison

    def add_table(self, title: str = "", columns: list[str] | None = None, rows: list[list[Any]] | None = None,
                  note: str = "", *, id: str = "", meta: dict[str, Any] | None = None) -> None:
        """A table of data. With an ``id``, its title, headings and note come from the view registry
        (reportgen.render.views) when the report is rendered, filled from the case's params and ``meta``; text
        given here is stored too and shown where the registry has no entry (plugins, old archives)."""
        # "views": 1 marks text the view registry may give (older archives reuse ids for other data)
        t: dict[str, Any] = {"id": id, "views": 1} if id else {}
        t["title"] = title  # "" with an id: the view's (tests and readers index tables by this key)
        if columns is not None or not id:
            t["columns"] = list(columns or [])
        t["rows"] = rows if rows is not None else []
        if note or not id:
            t["note"] = note
        if meta:
            t["meta"] = meta
        self.tables.append(t)

    def add_line_plot(self, id: str, title: str = "", xlabel: str = "", ylabel: str = "",
                      series: list[dict[str, Any]] | None = None, xscale: str = "linear", yscale: str = "linear",
                      note: str = "", meta: dict[str, Any] | None = None) -> None:
        """``series``: [{"label", "x": [...], "y": [...], "style": "" | "bound" | "dashed"}]. Title, axis labels
        and note come from the view registry where it has an entry for (kind, id); text given here is stored as
        the fallback."""
        plot: dict[str, Any] = {"id": id, "kind": "line", "views": 1}
        plot.update({k: v for k, v in (("title", title), ("xlabel", xlabel), ("ylabel", ylabel)) if v})
        plot.update({"xscale": xscale, "yscale": yscale, "series": series or []})
        if note:
            plot["note"] = note
        if meta:
            plot["meta"] = meta
        self.plots.append(plot)

    def add_histogram(self, id: str, title: str = "", xlabel: str = "", hists: list[dict[str, Any]] | None = None,
                      note: str = "", meta: dict[str, Any] | None = None) -> None:
        """``hists``: [{"label", "edges": [...], "counts": [...], "zeros": int, "total": int}]."""
        plot: dict[str, Any] = {"id": id, "kind": "hist", "views": 1}
        plot.update({k: v for k, v in (("title", title), ("xlabel", xlabel)) if v})
        plot.update({"xscale": "linear", "yscale": "linear", "series": hists or []})
        if note:
            plot["note"] = note
        if meta:
            plot["meta"] = meta
        self.plots.append(plot)

    def add_timing(self, timing: TimingResult) -> None:
        self.timings.append(timing.to_dict())

    def fact(self, key: str, value: Any) -> None:
        """Publish a fact; with a schema, an undeclared name (or a value of the wrong type) raises
        reportgen.facts.UndeclaredFact: a bug in the case, caught by its tests, not a user's error."""
        if self.schema is not None:
            self.schema.check(key, value, self.kind)
        self.facts[key] = value

    def note(self, text: str) -> None:
        self.notes.append(text)

    def explain(self, ctx: CaseContext, sides: dict[str, Callable[[], torch.Tensor]], bound: Any, *,
                calls: int = 3, repeats: int = 3, cudnn_bodies: dict[str, str] | None = None,
                kernel_sides: dict[str, Callable[[], torch.Tensor]] | None = None,
                cells: dict[str, dict[str, Any]] | None = None) -> None:
        """Why the sides differ and whether each reproduces itself: the kernels and determinism sections + facts.

        ``sides`` maps a label to a callable running that side's forward; ``bound`` is one side's elementwise
        float64 error bound (pairs are judged against the sum of both sides'). ``kernel_sides`` (default: ``sides``)
        are the callables whose kernels are captured, e.g. the sides again under another thread count; ``cells``
        replaces the determinism matrix's default settings cells.
        """
        from reportgen.measure.determinism import determinism_section
        from reportgen.measure.kernels import kernel_section

        with torch.no_grad():
            ctx.progress("kernel capture")
            self.extra["kernels"] = kernel_section(kernel_sides or sides, ctx.device, calls=calls,
                                                   cudnn_bodies=cudnn_bodies)
            ctx.progress("determinism matrix")
            self.extra["determinism"] = determinism_section(sides, ctx.device, bound=bound, repeats=repeats,
                                                            cells=cells)
        for section in ("kernels", "determinism"):
            for key, value in self.extra[section]["facts"].items():
                self.fact(key, value)
