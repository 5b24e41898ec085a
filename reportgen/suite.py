"""Suites: YAML files -> frozen, validated spec dataclasses.

Every validation error is a UsageError whose one line names the file, the case and the key.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import yaml

from reportgen.errors import UsageError
from reportgen.resources import resource_dir

DTYPES = ("float32", "float64", "float16", "bfloat16")
_SUITE_KEYS = {"name", "description", "defaults", "cases", "frameworks"}
_DEFAULT_KEYS = {"devices", "dtypes", "seed", "timing", "tolerances", "settings"}
_CASE_KEYS = {"name", "kind", "description", "devices", "dtypes", "seed", "params", "timing", "tolerances",
              "claims", "settings"}
_TIMING_KEYS = {"rounds": int, "min_sample_s": float, "enabled": bool}
_TOLERANCE_KEYS = {"bound_factor": float, "noise_iqr": float}
_CLAIM_KEYS = {"id", "text", "source", "rule"}
# Lower limits the type check alone lets through: rounds: 0 or min_sample_s: -1 used to pass and crash the case
# minutes later ("zero-size array to reduction"). key -> smallest allowed value
_LIMITS: dict[str, float] = {"rounds": 1, "min_sample_s": 0, "bound_factor": 0, "noise_iqr": 0}
# The suite name becomes (sanitised) part of the default run directory name: no path separators or markup.
_NAME_RE = re.compile(r"[^./\\<>\x00-\x1f\x7f][^/\\<>\x00-\x1f\x7f]{0,63}")
# Integer params with a positive default are sizes or counts and must be >= 1 (batch: -1 used to crash with
# "negative dimension"); these few are counts where 0 is documented to switch a part of the case off.
ZERO_ALLOWED_PARAMS = frozenset({"steps", "train_steps", "thread_check_seeds", "pad"})


@dataclass(frozen=True)
class TimingSpec:
    enabled: bool = True
    rounds: int = 7  # interleaved rounds; one raw sample per side per round
    min_sample_s: float = 0.02  # each sample runs the statement enough times to last at least this long


@dataclass(frozen=True)
class Tolerances:
    bound_factor: float = 1.0  # verdict "within rounding" means |delta| <= bound_factor * bound
    noise_iqr: float = 0.10  # a timing is flagged noisy when IQR/median >= this


@dataclass(frozen=True)
class ClaimSpec:
    id: str
    text: str
    source: str
    rule: Any  # interpreted by reportgen.claims


@dataclass(frozen=True)
class CaseSpec:
    name: str
    kind: str
    description: str
    devices: tuple[str, ...]
    dtypes: tuple[str, ...]
    seed: int
    params: Mapping[str, Any]
    timing: TimingSpec = TimingSpec()
    tolerances: Tolerances = Tolerances()
    claims: tuple[ClaimSpec, ...] = ()
    # numerics settings applied around the case (names of reportgen.measure.settings.APPLIERS), e.g.
    # {deterministic_algorithms: true, num_threads: 1}
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    description: str
    path: str
    cases: tuple[CaseSpec, ...] = field(default_factory=tuple)
    frameworks: Mapping[str, str] = field(default_factory=dict)  # name -> python interpreter path

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict
        from reportgen.results import jsonable
        # params first, by name: asdict would deep-copy a callable handed in through the Python API
        params = [jsonable(c.params) for c in self.cases]
        d = asdict(replace(self, cases=tuple(replace(c, params={}) for c in self.cases)))
        d["frameworks"] = dict(self.frameworks)
        for c, p in zip(d["cases"], params):
            c["params"] = p
            c["settings"] = dict(c["settings"])
        return d

    def select(self, names: tuple[str, ...]) -> "SuiteSpec":
        if not names:
            return self
        known = {c.name for c in self.cases}
        for n in names:
            if n not in known:
                raise UsageError(f"--case {n!r}: no such case in suite {self.name!r} "
                                 f"(cases: {', '.join(sorted(known))})")
        return replace(self, cases=tuple(c for c in self.cases if c.name in names))

    def override(self, devices: tuple[str, ...] = (), dtypes: tuple[str, ...] = (),
                 seed: int | None = None) -> "SuiteSpec":
        def one(c: CaseSpec) -> CaseSpec:
            return replace(c, devices=devices or c.devices, dtypes=dtypes or c.dtypes,
                           seed=c.seed if seed is None else seed)
        return replace(self, cases=tuple(one(c) for c in self.cases))


def bundled_suites() -> dict[str, Path]:
    """Suites shipped with reportgen: name -> path (works from a checkout and from an installed wheel)."""
    root = resource_dir("suites")
    return {p.stem: p for p in sorted(root.glob("*.yaml"))}


def resolve(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if path.is_dir():
            raise UsageError(f"suite file {name_or_path}: is a directory, not a suite YAML file")
        if not path.is_file():
            raise UsageError(f"suite file {name_or_path}: not found")
        return path
    suites = bundled_suites()
    if name_or_path not in suites:
        raise UsageError(f"suite {name_or_path!r}: no such bundled suite (have: {', '.join(suites)}) "
                         "and no such file")
    return suites[name_or_path]


def _type_name(t: type) -> str:
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(t, t.__name__)


def _check(value: Any, want: type, where: str) -> Any:
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        raise UsageError(f"{where}: expected {_type_name(want)}, got {value!r}")
    return value


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UsageError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _unknown(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise UsageError(f"{where}: unknown key {extra[0]!r} (allowed: {', '.join(sorted(allowed))})")


def _limit(value: Any, key: str, where: str) -> Any:
    if key not in _LIMITS or isinstance(value, bool):
        return value
    low = _LIMITS[key]
    if not math.isfinite(value) or value < low:
        raise UsageError(f"{where}: must be >= {low:g}, got {value!r}")
    return value


def _typed_block(data: Any, schema: dict[str, type], cls: type, where: str, base: Any) -> Any:
    data = _mapping(data, where)
    _unknown(data, set(schema), where)
    values = {k: _limit(_check(v, schema[k], f"{where}.{k}"), k, f"{where}.{k}") for k, v in data.items()}
    return replace(base, **values)


def _param(value: Any, default: Any, where: str, key: str, zero_ok: bool = False) -> Any:
    """Check case parameter ``key`` against its default, the only schema a case declares: same type; an integer
    whose default is positive >= 1 (>= 0 where ``zero_ok``), one whose default is >= 0 not negative; list items
    like the default's items; a mapping with the default's keys. Whether a value makes sense for the case (an
    activation's name, say) is still the case's to check when it runs."""
    if default is None:
        return value
    if isinstance(default, list):
        return _param_list(value, default, where, key)
    if isinstance(default, dict):
        return _param_mapping(value, default, where, key)
    value = _check(value, type(default), f"{where}: key '{key}'")
    if isinstance(default, int) and not isinstance(default, bool):
        low = 0 if zero_ok or default == 0 else 1
        if default >= 0 and value < low:
            raise UsageError(f"{where}: key '{key}': must be {'a non-negative' if low == 0 else 'a positive'} "
                             f"integer (a size or count), got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{where}: key '{key}': must be a finite number, got {value!r}")
    return value


def _param_list(value: Any, default: list[Any], where: str, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise UsageError(f"{where}: key '{key}': expected a list, got {value!r}")
    kinds = {type(d) for d in default}
    if len(kinds) != 1:  # an empty or mixed default declares nothing about its items
        return value
    # The item the default's items agree on: a positive int only if every default item is one.
    item = min(default) if kinds <= {int, float} else default[0]
    return [_param(v, item, where, f"{key}[{i}]") for i, v in enumerate(value)]


def _param_mapping(value: Any, default: dict[str, Any], where: str, key: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or set(value) != set(default):
        raise UsageError(f"{where}: key '{key}': expected a mapping with keys {', '.join(sorted(default))}, "
                         f"got {value!r}")
    return {k: _param(value[k], default[k], where, f"{key}.{k}") for k in default}


def _str_list(value: Any, where: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: expected a non-empty list of strings, got {value!r}")
    if allowed is not None:
        for v in value:
            if v not in allowed:
                raise UsageError(f"{where}: {v!r} is not one of {', '.join(allowed)}")
    return tuple(value)


def check_device(value: str, where: str) -> str:
    if value in ("cpu", "cuda", "auto", "all") or (value.startswith("cuda:") and value[5:].isdigit()):
        return value
    raise UsageError(f"{where}: {value!r} is not a device (cpu, cuda, cuda:N, auto, all)")


def _claims(value: Any, where: str) -> tuple[ClaimSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise UsageError(f"{where}: expected a list of claims")
    out = []
    for i, raw in enumerate(value):
        w = f"{where}[{i}]"
        raw = _mapping(raw, w)
        _unknown(raw, _CLAIM_KEYS, w)
        for key in ("id", "text", "source", "rule"):
            if key not in raw:
                raise UsageError(f"{w}: missing key {key!r}")
        from reportgen.claims import validate_rule  # the rule grammar lives with its evaluator
        validate_rule(raw["rule"], f"{w} (claim {_check(raw['id'], str, f'{w}.id')!r})")
        out.append(ClaimSpec(id=_check(raw["id"], str, f"{w}.id"), text=_check(raw["text"], str, f"{w}.text"),
                             source=_check(raw["source"], str, f"{w}.source"), rule=raw["rule"]))
    return tuple(out)


def _settings(value: Any, where: str) -> dict[str, Any]:
    from reportgen.measure.settings import APPLIERS

    out = {}
    for key, v in _mapping(value, where).items():
        if key not in APPLIERS:
            raise UsageError(f"{where}.{key}: unknown setting (known: {', '.join(sorted(APPLIERS))})")
        out[key] = _check(v, APPLIERS[key][1], f"{where}.{key}")
    return out


def _case(raw: Any, index: int, defaults: Mapping[str, Any], where_file: str) -> CaseSpec:
    from reportgen import cases as registry

    name = raw.get("name") if isinstance(raw, Mapping) else None
    where = f"{where_file}: case {name!r}" if isinstance(name, str) else f"{where_file}: cases[{index}]"
    raw = _mapping(raw, where)
    _unknown(raw, _CASE_KEYS, where)
    if "name" not in raw:
        raise UsageError(f"{where}: missing key 'name'")
    name = _check(raw["name"], str, f"{where}: key 'name'")
    kind = _check(raw.get("kind", name), str, f"{where}: key 'kind'")
    info = registry.get(kind)
    if info is None:
        raise UsageError(f"{where}: key 'kind': unknown case kind {kind!r} "
                         f"(known: {', '.join(sorted(registry.names()))})")
    params = dict(info.defaults)
    for key, value in _mapping(raw.get("params"), f"{where}: key 'params'").items():
        if key not in info.defaults:
            raise UsageError(f"{where}: key 'params.{key}': unknown parameter for {kind} "
                             f"(known: {', '.join(sorted(info.defaults))})")
        params[key] = _param(value, info.defaults[key], where, f"params.{key}", zero_ok=key in ZERO_ALLOWED_PARAMS)
    if info.prepare is not None:
        try:
            params = dict(info.prepare(params, Path(where_file).parent))
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}") from None
    if info.validate is not None:
        try:
            info.validate(params)
        except UsageError as exc:  # the case names the key ("fc_vs_conv2d_1x1: params.variants[0]..."); add the file
            raise UsageError(f"{where}: {exc}") from None
    devices = tuple(check_device(d, f"{where}: key 'devices'")
                    for d in _str_list(raw.get("devices", defaults.get("devices", ["cpu"])),
                                       f"{where}: key 'devices'"))
    dtypes = _str_list(raw.get("dtypes", defaults.get("dtypes", ["float32"])), f"{where}: key 'dtypes'", DTYPES)
    seed = _check(raw.get("seed", defaults.get("seed", 0)), int, f"{where}: key 'seed'")
    timing = _typed_block(defaults.get("timing"), _TIMING_KEYS, TimingSpec, f"{where_file}: defaults.timing",
                          TimingSpec())
    timing = _typed_block(raw.get("timing"), _TIMING_KEYS, TimingSpec, f"{where}: key 'timing'", timing)
    tol = _typed_block(defaults.get("tolerances"), _TOLERANCE_KEYS, Tolerances,
                       f"{where_file}: defaults.tolerances", Tolerances())
    tol = _typed_block(raw.get("tolerances"), _TOLERANCE_KEYS, Tolerances, f"{where}: key 'tolerances'", tol)
    settings = {**_settings(defaults.get("settings"), f"{where_file}: defaults.settings"),
                **_settings(raw.get("settings"), f"{where}: key 'settings'")}
    description = _check(raw.get("description", info.description), str, f"{where}: key 'description'")
    claims = _claims(raw.get("claims"), f"{where}: key 'claims'")
    from reportgen.facts import check_claim_facts
    for i, claim in enumerate(claims):
        check_claim_facts(claim.rule, info.facts, f"{where}: claim {claim.id!r}")
    return CaseSpec(name=name, kind=kind, description=description.strip(), devices=devices, dtypes=dtypes,
                    seed=seed, params=params, timing=timing, tolerances=tol,
                    claims=claims, settings=settings)


def load_suite(name_or_path: str) -> SuiteSpec:
    """Load and validate a suite by bundled name or path; raises UsageError naming file/case/key."""
    path = resolve(name_or_path)
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise UsageError(f"{where}: invalid YAML{at}: {problem}") from None
    except OSError as exc:
        raise UsageError(f"{where}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where}: not UTF-8 text (byte {exc.start}); is it a suite YAML file?") from None
    data = _mapping(data, where)
    _unknown(data, _SUITE_KEYS, where)
    defaults = _mapping(data.get("defaults"), f"{where}: key 'defaults'")
    _unknown(defaults, _DEFAULT_KEYS, f"{where}: key 'defaults'")
    raw_cases = data.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise UsageError(f"{where}: key 'cases': expected a non-empty list of cases")
    cases = tuple(_case(raw, i, defaults, where) for i, raw in enumerate(raw_cases))
    seen: set[str] = set()
    for c in cases:
        if c.name in seen:
            raise UsageError(f"{where}: case {c.name!r}: key 'name': duplicate case name")
        seen.add(c.name)
    name = _check(data.get("name", path.stem), str, f"{where}: key 'name'")
    if "name" in data and not _NAME_RE.fullmatch(name):
        # The default run directory is built from a sanitised name (runner.new_run_id), so "Nightly CPU check" is
        # fine; refused are names that only make sense as paths or markup, and control characters.
        raise UsageError(f"{where}: key 'name': {name!r} is not a plain name (no '/', '\\', '<', '>', control "
                         "characters or leading '.'; at most 64 characters)")
    description = _check(data.get("description", ""), str, f"{where}: key 'description'")
    frameworks = {k: _check(v, str, f"{where}: key 'frameworks.{k}'")
                  for k, v in _mapping(data.get("frameworks"), f"{where}: key 'frameworks'").items()}
    return SuiteSpec(name=name, description=description.strip(), path=str(path), cases=cases,
                     frameworks=frameworks)
