"""Suites: YAML files -> frozen, validated spec dataclasses.

Every validation error is a UsageError whose one line names the file, the case and the key.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import yaml

from reportgen.errors import UsageError
from reportgen.resources import resource_dir

DTYPES = ("float32", "float64", "float16", "bfloat16")
_SUITE_KEYS = {"name", "description", "defaults", "cases", "frameworks"}
_DEFAULT_KEYS = {"devices", "dtypes", "seed", "timing", "tolerances", "settings", "robustness"}
_CASE_KEYS = {"name", "kind", "description", "devices", "dtypes", "seed", "params", "timing", "tolerances",
              "claims", "settings", "robustness"}
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
# Upper limits. A size or count with no upper bound (seeds: 10**9, rounds: 10**9) runs until killed, and a number
# above ~2**31 overflows a tensor dimension somewhere deep in torch; the limits are far above any useful value
# (the bundled suites use at most a few thousand) and say so in the error, so a user who needs more can ask.
MAX_COUNT = 1_000_000  # any integer case param (a size or a count) and any list param's length
MAX_ROUNDS = 100_000  # timing rounds (x 2 sides x min_sample_s 0.02 s: about an hour)
MAX_MIN_SAMPLE_S = 60.0  # seconds per timing sample
# Seeds: torch.Generator.manual_seed accepts [-2**63, 2**64) and raises "Overflow when unpacking long long" above;
# the cases seed generators with seed + a small offset, so non-negative seeds below 2**63 always stay in range.
SEED_MIN, SEED_MAX = 0, 2**63 - 1
# A suite is a hand-written file of a few KB: these bound what a hostile or broken one can cost at load.
MAX_SUITE_BYTES = 1 << 20
MAX_YAML_DEPTH = 64  # nesting levels; deeper documents used to end in RecursionError
MAX_YAML_NODES = 100_000  # nodes after alias expansion: a 741-byte "billion laughs" suite made a 524 MB archive


@dataclass(frozen=True)
class TimingSpec:
    enabled: bool = True
    rounds: int = 7  # interleaved rounds; one raw sample per side per round
    min_sample_s: float = 0.02  # each sample runs the statement enough times to last at least this long


#: Most seeds a suite may ask robustness runs for: each seed reruns the case (timing off), so the cap keeps a typo
#: (seeds: 2000) from turning a minutes-long suite into hours.
ROBUSTNESS_MAX_SEEDS = 100
_ROBUSTNESS_KEYS = {"seeds": int, "budget_s": float}


@dataclass(frozen=True)
class RobustnessSpec:
    """Rerun the case with seeds seed+1 .. seed+seeds-1 (timing off) and judge every claim on each seed's result.

    ``seeds`` counts the main run: 1 (the default) means no robustness runs. ``budget_s`` bounds the wall time of
    one job's robustness runs: no further seed is started once it is spent, and the claim records how many seeds
    ran (``robustness.seeds``) next to how many were asked for (``robustness.requested``)."""

    seeds: int = 1
    budget_s: float = 60.0


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
    robustness: RobustnessSpec = RobustnessSpec()


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


class _SuiteLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses what a suite never needs and a hostile file uses: nesting deeper than
    MAX_YAML_DEPTH (the composer recurses: RecursionError), aliases expanding beyond MAX_YAML_NODES nodes (a
    "billion laughs" file), and a key given twice in one mapping (PyYAML keeps the last one silently)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Any:
        node = super().compose_document()
        _check_expansion(node)
        return node

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first at line {seen[key].line + 1})",
                        key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _check_expansion(root: Any) -> None:
    """ComposerError when the document, with every alias expanded, has more than MAX_YAML_NODES nodes. Sizes are
    memoised per node object, so a bomb is measured in time linear in its (small) text, never expanded."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()  # nodes being measured: meeting one again means an alias inside its own anchor

    def size(node: Any) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in open_:
            raise yaml.composer.ComposerError(None, None, "an alias refers to a node that contains it "
                                              "(a recursive structure)", node.start_mark)
        open_.add(id(node))
        n = 1
        if isinstance(node, yaml.SequenceNode):
            n += sum(size(v) for v in node.value)
        elif isinstance(node, yaml.MappingNode):
            n += sum(size(k) + size(v) for k, v in node.value)
        open_.discard(id(node))
        sizes[id(node)] = n
        if n > MAX_YAML_NODES:
            raise yaml.composer.ComposerError(None, None, f"expands to more than {MAX_YAML_NODES:,} nodes "
                                              "(aliases repeated too often?)", node.start_mark)
        return n

    if root is not None:
        size(root)


def _type_name(t: type) -> str:
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(t, t.__name__)


def _check(value: Any, want: type, where: str) -> Any:
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > 2**1000:  # float() would raise OverflowError
            raise UsageError(f"{where}: expected a finite number, got {_short(value)}")
        return float(value)
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        raise UsageError(f"{where}: expected {_type_name(want)}, got {_short(value)}")
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


_UPPER: dict[str, float] = {"rounds": MAX_ROUNDS, "min_sample_s": MAX_MIN_SAMPLE_S}


def _limit(value: Any, key: str, where: str) -> Any:
    if key not in _LIMITS or isinstance(value, bool):
        return value
    low = _LIMITS[key]
    if (isinstance(value, float) and not math.isfinite(value)) or value < low:
        raise UsageError(f"{where}: must be >= {low:g}, got {_short(value)}")
    if key in _UPPER and value > _UPPER[key]:
        raise UsageError(f"{where}: must be <= {_UPPER[key]:g} (the limit on {key}), got {_short(value)}")
    return value


def check_seed(value: Any, where: str) -> int:
    """A seed torch accepts, whatever small offset a case adds; UsageError naming ``where`` otherwise."""
    value = _check(value, int, where)
    if not SEED_MIN <= value <= SEED_MAX:
        raise UsageError(f"{where}: seed must be an integer in [{SEED_MIN}, 2**63-1], got {_short(value)}")
    return value


def _short(value: Any) -> str:
    """repr of ``value`` cut to a readable length (a 5,000-digit integer must not become a 5,000-character line)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**40:
        # str() of an integer past 4,300 digits raises ValueError (sys.set_int_max_str_digits): count bits
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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
                             f"integer (a size or count), got {_short(value)}")
        if default >= 0 and value > MAX_COUNT:
            raise UsageError(f"{where}: key '{key}': must be at most {MAX_COUNT:,} (the limit on sizes and "
                             f"counts), got {_short(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{where}: key '{key}': must be a finite number, got {value!r}")
    return value


def _param_list(value: Any, default: list[Any], where: str, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise UsageError(f"{where}: key '{key}': expected a list, got {_short(value)}")
    if len(value) > MAX_COUNT:
        raise UsageError(f"{where}: key '{key}': at most {MAX_COUNT:,} items, got {len(value):,}")
    kinds = {type(d) for d in default}
    if len(kinds) != 1:  # an empty or mixed default declares nothing about its items
        return value
    # The item the default's items agree on: a positive int only if every default item is one.
    item = min(default) if kinds <= {int, float} else default[0]
    return [_param(v, item, where, f"{key}[{i}]") for i, v in enumerate(value)]


def _param_mapping(value: Any, default: dict[str, Any], where: str, key: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or set(value) != set(default):
        raise UsageError(f"{where}: key '{key}': expected a mapping with keys {', '.join(sorted(default))}, "
                         f"got {_short(value)}")
    return {k: _param(value[k], default[k], where, f"{key}.{k}") for k in default}


def _str_list(value: Any, where: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: expected a non-empty list of strings, got {_short(value)}")
    if allowed is not None:
        for v in value:
            if v not in allowed:
                raise UsageError(f"{where}: {v!r} is not one of {', '.join(allowed)}")
    return tuple(value)


def check_device(value: str, where: str) -> str:
    if value in ("cpu", "cuda", "auto", "all") or (value.startswith("cuda:") and value[5:].isdigit()):
        return value
    raise UsageError(f"{where}: {value!r} is not a device (cpu, cuda, cuda:N, auto, all)")


INTERPRETER_CHECK_S = 30.0  # a cold Python with a big site-packages starts in ~1 s; a hung one is refused


def check_interpreter(name: str, path: str, label: str) -> str:
    """The absolute path of framework ``name``'s Python ``path`` (``label`` names where it was given: the
    ``--framework`` option or a suite key); UsageError unless it exists and runs as a Python 3.

    Checked where the user gave it: a missing interpreter would otherwise only turn into a skipped probe deep
    inside a report, and the run would exit 0 as if the framework had been compared. Running it (``/bin/true`` is
    an executable too) costs well under a second next to the probe's own import of the framework."""
    if os.sep in path:
        p = Path(path).expanduser()
        if not p.is_file() or not os.access(p, os.X_OK):
            why = "no such file" if not p.exists() else "not an executable file"
            raise UsageError(f"{label}: {why}; expected the python of {name}'s environment")
        # Absolute (the probe runs in a temporary directory) but not resolved: a venv's bin/python is a symlink
        # to the base interpreter, and resolving it would lose the environment and its framework.
        found = str(p.absolute())
    else:
        which = shutil.which(path)
        if which is None:
            raise UsageError(f"{label}: no such command on PATH")
        found = which
    try:
        proc = subprocess.run([found, "-c", "import sys; print(sys.version_info[0])"], capture_output=True,
                              text=True, timeout=INTERPRETER_CHECK_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise UsageError(f"{label}: did not answer within {INTERPRETER_CHECK_S:g} s; is it a python?") from None
    except OSError as exc:
        raise UsageError(f"{label}: cannot run it: {exc.strerror or exc}") from None
    if proc.returncode != 0 or proc.stdout.strip() != "3":
        raise UsageError(f"{label}: not a Python 3 interpreter (running it with -c printed "
                         f"{proc.stdout.strip()[:40]!r}, exit {proc.returncode}); expected the python of "
                         f"{name}'s environment")
    return found


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
    from reportgen.measure.settings import APPLIERS, check_setting

    out = {}
    for key, v in _mapping(value, where).items():
        if key not in APPLIERS:
            raise UsageError(f"{where}.{key}: unknown setting (known: {', '.join(sorted(APPLIERS))})")
        out[key] = _check(v, APPLIERS[key][1], f"{where}.{key}")
        problem = check_setting(key, out[key])
        if problem is not None:
            raise UsageError(f"{where}.{key}: {problem}")
    return out


def _robustness(value: Any, where: str, base: RobustnessSpec) -> RobustnessSpec:
    spec = _typed_block(value, _ROBUSTNESS_KEYS, RobustnessSpec, where, base)
    if not 1 <= spec.seeds <= ROBUSTNESS_MAX_SEEDS:
        raise UsageError(f"{where}.seeds: must be between 1 and {ROBUSTNESS_MAX_SEEDS}, got {spec.seeds!r}")
    if not (math.isfinite(spec.budget_s) and spec.budget_s > 0):
        raise UsageError(f"{where}.budget_s: must be a positive number of seconds, got {spec.budget_s!r}")
    return spec


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
    seed = check_seed(raw.get("seed", defaults.get("seed", 0)), f"{where}: key 'seed'")
    timing = _typed_block(defaults.get("timing"), _TIMING_KEYS, TimingSpec, f"{where_file}: defaults.timing",
                          TimingSpec())
    timing = _typed_block(raw.get("timing"), _TIMING_KEYS, TimingSpec, f"{where}: key 'timing'", timing)
    tol = _typed_block(defaults.get("tolerances"), _TOLERANCE_KEYS, Tolerances,
                       f"{where_file}: defaults.tolerances", Tolerances())
    tol = _typed_block(raw.get("tolerances"), _TOLERANCE_KEYS, Tolerances, f"{where}: key 'tolerances'", tol)
    settings = {**_settings(defaults.get("settings"), f"{where_file}: defaults.settings"),
                **_settings(raw.get("settings"), f"{where}: key 'settings'")}
    robustness = _robustness(raw.get("robustness"), f"{where}: key 'robustness'",
                             _robustness(defaults.get("robustness"), f"{where_file}: defaults.robustness",
                                         RobustnessSpec()))
    description = _check(raw.get("description", info.description), str, f"{where}: key 'description'")
    claims = _claims(raw.get("claims"), f"{where}: key 'claims'")
    from reportgen.facts import check_claim_facts
    for i, claim in enumerate(claims):
        check_claim_facts(claim.rule, info.facts, f"{where}: claim {claim.id!r}")
    return CaseSpec(name=name, kind=kind, description=description.strip(), devices=devices, dtypes=dtypes,
                    seed=seed, params=params, timing=timing, tolerances=tol,
                    claims=claims, settings=settings, robustness=robustness)


def load_suite(name_or_path: str) -> SuiteSpec:
    """Load and validate a suite by bundled name or path; raises UsageError naming file/case/key."""
    path = resolve(name_or_path)
    where = str(path)
    try:
        if path.stat().st_size > MAX_SUITE_BYTES:
            raise UsageError(f"{where}: {path.stat().st_size:,} bytes; a suite file may have at most "
                             f"{MAX_SUITE_BYTES:,}")
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SuiteLoader)  # noqa: S506 (a SafeLoader)
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where}: not UTF-8 text (byte {exc.start}); is it a suite YAML file?") from None
    except ValueError as exc:  # a 5,000-digit integer: int() past Python's digit limit
        detail = " ".join(str(exc).split())
        if "integer string conversion" in detail:
            detail = f"an integer with more than {sys.get_int_max_str_digits():,} digits"
        raise UsageError(f"{where}: invalid YAML: {detail[:160]}") from None
    except RecursionError:  # a safety net: MAX_YAML_DEPTH stops nesting long before the stack
        raise UsageError(f"{where}: invalid YAML: nested too deeply") from None
    except yaml.reader.ReaderError as exc:  # a NUL or other control character: no problem_mark, no problem
        raise UsageError(f"{where}: invalid YAML: unacceptable character "
                         f"{chr(exc.character) if isinstance(exc.character, int) else exc.character!r} at byte "
                         f"{exc.position}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise UsageError(f"{where}: invalid YAML{at}: {problem}") from None
    except OSError as exc:
        raise UsageError(f"{where}: cannot read: {exc.strerror or exc}") from None
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
    frameworks = {k: check_interpreter(k, _check(v, str, f"{where}: key 'frameworks.{k}'"),
                                       f"{where}: key 'frameworks.{k}': {v}")
                  for k, v in _mapping(data.get("frameworks"), f"{where}: key 'frameworks'").items()}
    return SuiteSpec(name=name, description=description.strip(), path=str(path), cases=cases,
                     frameworks=frameworks)
