"""Redaction of everything reportgen writes: reports go onto public tickets.

Two levels. :func:`redact` is for free text that came from outside (environment variable values, the command line,
error messages): it also hides token-shaped strings. :func:`redact_tree` runs over every string of a results dict
before it is written or rendered (results.json, HTML and its embedded JSON, Markdown, PDF, ``env --json``): the home
directory and ``key=value`` pairs whose key names a secret, whatever the value's length. It leaves long hex strings
alone (git hashes, boot ids are data, not secrets).

No torch import here: readers (render, compare) use it too.
"""

from __future__ import annotations

import os
import re
from typing import Any

# Words that mark a variable as holding a secret. Long, unambiguous ones match anywhere in the name; short ones
# (PASS, PWD, SIG, ...) only as a whole "_"-separated word, so that e.g. a *_BYPASS_* or *_PASSES switch
# is still shown. Settings such as CUDA_VISIBLE_DEVICES, PYTORCH_CUDA_ALLOC_CONF, OMP_NUM_THREADS or
# CUBLAS_WORKSPACE_CONFIG contain none of them.
_SECRET_NAME = re.compile(
    r"KEY|TOKEN|SECRET|PASSW|PASSCODE|PASSPHRASE|CREDENTIAL|AUTH(?!OR)|PRIVATE|SIGNATURE|COOKIE|SESSION|BEARER"
    r"|CERT|SALT|(?:^|_)(?:PASS|PWD|PW|PAT|PIN|SIG|CRED|CREDS|JWT|OTP|API_?KEY)(?:_|$)",
    re.IGNORECASE)
_SECRET_VALUE = re.compile(
    r"(?:gh[pousr]|github_pat)_[A-Za-z0-9_]{16,}"  # GitHub tokens
    r"|hf_[A-Za-z0-9]{16,}"  # Hugging Face
    r"|AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}"  # OpenAI/Stripe-style keys
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"  # Slack
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JWT
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|://[^/\s:@]+:[^/\s@]+@"  # credentials inside a URL
    r"|\b(?i:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"  # an HTTP Authorization header's value
)
# A long run of mixed letters and digits with no separators looks like a key even without a known prefix. "/" is a
# separator here: a path with dates in it (/data/run-2024-01-05/torch_cache) is not a key.
_HIGH_ENTROPY = re.compile(r"(?=[A-Za-z0-9+=_-]*[0-9])(?=[A-Za-z0-9+=_-]*[A-Za-z])[A-Za-z0-9+=_-]{32,}")
REDACTED = "<redacted>"
# ``password=shortLEAK1``, ``api_key: x``, ``TOKEN=abc``: a name that marks a secret (the same words as for variable
# names), "=" or ":", then the value up to a separator. Matched anywhere, so a variable such as
# TORCH_EXTRA_CONF='user=me,password=shortLEAK1' is caught although its own name is harmless.
_SECRET_PAIR = re.compile(r"(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)(?P<sep>\s*[=:]\s*)(?P<value>[^\s,;&'\"]+)")


def _redact_pairs(value: str) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group("value") == REDACTED or not _SECRET_NAME.search(m.group("key")):
            return m.group(0)
        return f"{m.group('key')}{m.group('sep')}{REDACTED}"
    return _SECRET_PAIR.sub(one, value)


def _home_pattern() -> re.Pattern[str] | None:
    homes = {os.path.expanduser("~"), os.environ.get("HOME", "")}
    homes |= {os.path.realpath(h) for h in homes if h}
    homes = {h.rstrip("/") for h in homes if h and h not in ("/", "~")}
    if not homes:
        return None
    # Longest first, and only as a whole path component: HOME=/root must not turn /rootfs into ~fs.
    alternatives = "|".join(re.escape(h) for h in sorted(homes, key=len, reverse=True))
    # A whole path on the left too: /opt/gcc-13/root/usr is not HOME=/root.
    return re.compile(rf"(?<![\w.~/-])(?:{alternatives})(?=/|\\|$|[^\w.-])")


def redact_home(value: str) -> str:
    """The home directory (user names leak through paths) as ``~``."""
    pattern = _home_pattern()
    return pattern.sub("~", value) if pattern is not None else value


def redact(value: str) -> str:
    """Hide secret-looking substrings, ``key=value`` secrets and the home directory."""
    value = _SECRET_VALUE.sub(REDACTED, value)
    value = _HIGH_ENTROPY.sub(REDACTED, value)
    return redact_home(_redact_pairs(value))


def redact_tree(obj: Any) -> Any:
    """``obj`` (JSON-like) with the home directory and ``key=value`` secrets hidden in every string (keys too)."""
    pattern = _home_pattern()

    def text(s: str) -> str:
        s = _redact_pairs(s) if ("=" in s or ":" in s) else s
        return pattern.sub("~", s) if pattern is not None else s

    def walk(o: Any) -> Any:
        if isinstance(o, str):
            return text(o)
        if isinstance(o, dict):
            return {(text(k) if isinstance(k, str) else k): walk(v) for k, v in o.items()}
        if isinstance(o, list):
            return [walk(v) for v in o]
        if isinstance(o, tuple):
            return tuple(walk(v) for v in o)
        return o

    return walk(obj)
