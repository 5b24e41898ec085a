"""reportgen: reproducibility reports for PyTorch numerics.

``reportgen.check(a, b, inputs)`` and ``reportgen.assert_equivalent(a, b, inputs)`` put two implementations
through the pair engine from Python (see reportgen.api); they are imported on first use, so that importing
reportgen (e.g. to render an archive) does not import torch.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["check", "assert_equivalent", "CheckResult", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("check", "assert_equivalent", "CheckResult"):
        from reportgen import api as _api
        return getattr(_api, name)
    raise AttributeError(f"module 'reportgen' has no attribute {name!r}")
