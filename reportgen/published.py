"""The published code, run as published: a case keeps its source's snippet as text, executes that text, and judges
its claims on what the snippet computed. The report shows the snippet it ran, what it printed, and where the case's
own variants depart from it.

Running the text itself (rather than a re-implementation) is the fidelity guarantee: shapes, layouts, module
construction and default initialisation, seeding calls and their order, the loss — all are the source's. The
snippet runs in a fresh namespace with the global RNG state saved and restored around it, so it may call
``torch.manual_seed`` as the source does without disturbing anything else.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import torch


@dataclass(frozen=True)
class Published:
    """A source's code and how the case relates to it."""

    source: str  # URL (or citation) of the post, thread or page
    title: str
    snippet: str  # the code as published; `edits` lists any change needed to run it here
    edits: tuple[str, ...] = ()
    #: where the case's variants (sweeps, other inits, other layouts, more seeds) depart from the snippet
    departures: tuple[str, ...] = ()
    #: names the snippet defines that the case reads (documentation: checked after the run)
    outputs: tuple[str, ...] = ()
    #: the snippet's seeding call as it appears in the text (e.g. "torch.manual_seed(2010)"), which a robustness
    #: run replaces to rerun the published protocol on other seeds; None when the source sets no seed
    seed_call: str | None = None

    def with_seed(self, seed: int) -> "Published":
        """The same protocol on another seed: the seeding call replaced (and said so in ``edits``)."""
        if self.seed_call is None or self.seed_call not in self.snippet:
            raise ValueError(f"{self.title}: no seeding call {self.seed_call!r} in the snippet to replace")
        call = self.seed_call.split("(", 1)[0]
        new = f"{call}({seed})"
        return replace(self, snippet=self.snippet.replace(self.seed_call, new, 1), seed_call=new,
                       edits=self.edits + (f"seed: {self.seed_call} replaced by {new} (robustness over seeds)",))

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "title": self.title, "snippet": self.snippet, "edits": list(self.edits),
                "departures": list(self.departures), "outputs": list(self.outputs), "seed_call": self.seed_call}


@dataclass
class PublishedRun:
    namespace: dict[str, Any]
    printed: str
    published: Published
    extra: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.namespace[name]

    def section(self) -> dict[str, Any]:
        """For ``CaseOutput.extra["published"]``: the snippet, what it printed, the departures."""
        return {**self.published.to_dict(), "printed": self.printed[-4000:], **self.extra}


def run_published(pub: Published, globals_: Mapping[str, Any] | None = None) -> PublishedRun:
    """Execute ``pub.snippet`` in a fresh namespace (plus ``globals_``, e.g. a device), stdout captured, the
    global RNG state restored afterwards. Raises what the snippet raises (the case records it as an error)."""
    ns: dict[str, Any] = {"__name__": "__published__", **(globals_ or {})}
    buf = io.StringIO()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices), contextlib.redirect_stdout(buf):
        exec(compile(pub.snippet, f"<published: {pub.title}>", "exec"), ns)  # noqa: S102 - our own bundled text
    missing = [n for n in pub.outputs if n not in ns]
    if missing:
        raise RuntimeError(f"the published snippet ({pub.title}) defined no {', '.join(missing)}")
    return PublishedRun(namespace=ns, printed=buf.getvalue(), published=pub)
