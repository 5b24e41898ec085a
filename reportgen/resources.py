"""Where the bundled templates/ and suites/ are, installed or in a source checkout.

The design card keeps them at the top level of the repository; the wheel maps them into the package
(reportgen/templates, reportgen/suites, see pyproject.toml). They are plain folders, not packages, so
importlib.resources would hand back a MultiplexedPath: a filesystem lookup is simpler and works in both layouts.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """``templates`` or ``suites``: inside the installed package, else at the checkout's top level."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"reportgen: bundled folder {name!r} not found (broken install?)")
