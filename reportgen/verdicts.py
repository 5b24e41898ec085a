"""Comparison verdicts and their order of severity: shared by the measurements and the renderers.

Kept apart from measure.numerics so that rendering an archived run never has to import torch.
"""

from __future__ import annotations

IDENTICAL = "identical"
WITHIN = "within rounding"
OUT_OF_BOUND = "out of bound"
_SEVERITY = (IDENTICAL, WITHIN, OUT_OF_BOUND)


def worst_verdict(verdicts: list[str]) -> str | None:
    """The most severe comparison verdict in ``verdicts`` (others ignored); None when there is none."""
    known = [v for v in verdicts if v in _SEVERITY]
    return max(known, key=_SEVERITY.index) if known else None
