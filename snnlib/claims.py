"""Each paper's claims, declared in config before the run and judged here on what the run measured.

A work lists its claims in ``config/<key>.yaml`` under ``claims:``; a criterion changes only by a
commit to that file, so the history shows what was fixed before which run. Each claim names

* ``id``, ``text`` (quoted or paraphrased), ``source`` (where the paper makes it), ``quantity``
  (what this run measures to test it, one value per seed);
* ``test`` and ``margin`` -- with d = A - B per seed (for ``direction: lower`` the quantity is
  negated first, so "better" is always "larger"):

  ==============  ========================================  ======================  =================
  test            claim                                     reproduced when         not reproduced when
  ==============  ========================================  ======================  =================
  superiority     A better than B by more than margin        low(d) > margin         high(d) < margin
  noninferiority  A not worse than B by more than margin     low(d) > -margin        high(d) < -margin
  equivalence     abs(A - B) < margin (TOST, 90 % interval)  interval in (-m, m)     interval outside
  ratio           mean A / mean B beyond margin (Fieller)    interval beyond margin  interval short of it
  threshold       mean A beyond margin (one sample)          interval beyond margin  interval short of it
  ==============  ========================================  ======================  =================

  Intervals are 95 % t intervals over seeds from :mod:`snnlib.stats` unless stated; anything
  else is ``inconclusive``: the interval straddles the margin and the evidence does not decide;
* ``a``, ``b`` -- the arms' display names; ``direction`` (higher | lower, default higher);
  ``min_seeds`` (default 5 for comparative tests, 1 for a threshold);
* ``requires`` -- the profiles / data modes that can test the claim (e.g. ``{profile: [paper],
  data: [real]}`` for a number only the original setting can reach);
* ``preconditions`` -- what makes this run able to test the claim (arms above chance, training
  converged, the task needs what the claim is about), each with ``min`` and/or ``max`` bounds
  checked on a value the notebook passes;
* optionally ``paper_value`` and ``why`` (the reasoning behind the margin, written beforehand).

Verdicts: ``reproduced``, ``not reproduced``, ``inconclusive``, and ``untested`` -- this run cannot
test the claim: the profile or data mode is not in ``requires``, fewer seeds than ``min_seeds``, a
precondition failed (its value is recorded), or the notebook said why with
:meth:`ClaimLedger.untested`. A failed precondition never gives ``not reproduced``.

The notebook measures and calls :meth:`ClaimLedger.judge`; the verdict is never typed by hand.
:meth:`ClaimLedger.save` writes ``results/<key>/claims.json`` (refusing while a declared claim is
unjudged); :func:`gather` collects every work's file into ``results/claims.md`` and
:func:`update_readme` puts the summary table in the README between ``<!-- claims:start -->`` and
``<!-- claims:end -->``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snnlib import __version__, stats
from snnlib.config import PROFILES, ConfigError, results_dir, work_claims
from snnlib.io import write_json, write_text

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "untested")
TESTS = ("superiority", "noninferiority", "equivalence", "ratio", "threshold")
COMPARATIVE = ("superiority", "noninferiority", "equivalence", "ratio")
README_START = "<!-- claims:start -->"
README_END = "<!-- claims:end -->"
_SPEC_FIELDS = {"id", "text", "source", "quantity", "test", "a", "b", "margin", "direction", "min_seeds",
                "requires", "preconditions", "paper_value", "why"}


@dataclass(frozen=True)
class Precondition:
    """A bound a measured value must meet for the claim to be testable on this run."""

    id: str
    text: str
    min: float | None = None
    max: float | None = None

    def holds(self, value) -> bool:
        values = np.asarray(value, dtype=float).ravel()
        if values.size == 0 or not np.all(np.isfinite(values)):
            return False
        return bool((self.min is None or np.all(values >= self.min)) and (self.max is None or np.all(values <= self.max)))

    def bounds(self) -> str:
        parts = ([f">= {self.min:g}"] if self.min is not None else []) + ([f"<= {self.max:g}"] if self.max is not None else [])
        return " and ".join(parts)


@dataclass(frozen=True)
class ClaimSpec:
    """One claim as declared in ``config/<key>.yaml``."""

    id: str
    text: str
    source: str
    quantity: str
    test: str
    a: str
    b: str | None = None
    margin: float = 0.0
    direction: str = "higher"
    min_seeds: int = 5
    profiles: tuple[str, ...] = PROFILES
    data: tuple[str, ...] = ("embedded", "real")
    preconditions: tuple[Precondition, ...] = ()
    paper_value: Any = None
    why: str = ""

    @property
    def criterion(self) -> str:
        """The test in words, generated from the declaration."""
        m, a, b = self.margin, self.a, self.b
        lower = self.direction == "lower"
        if self.test == "superiority":
            text = f"{a} - {b} {'<' if lower else '>'} {-m if lower else m:g}"
        elif self.test == "noninferiority":
            text = f"{a} - {b} {'<' if lower else '>'} {m if lower else -m:g}"
        elif self.test == "equivalence":
            return f"|{a} - {b}| < {m:g}: TOST, 90 % paired t interval inside (-{m:g}, {m:g}), n >= {self.min_seeds}"
        elif self.test == "ratio":
            return f"mean {a} / mean {b} {'<' if lower else '>'} {m:g}: 95 % Fieller interval, n >= {self.min_seeds}"
        else:
            return f"mean {a} {'<' if lower else '>'} {m:g}: 95 % t interval over seeds, n >= {self.min_seeds}"
        return f"{text}: 95 % paired t interval over seeds, n >= {self.min_seeds}"


def _fail(path, claim_id, message) -> ConfigError:
    return ConfigError(f"{path}: claim '{claim_id}': {message}")


def _names(value, allowed, what, path, claim_id) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value or ())
    bad = [v for v in names if v not in allowed]
    if not names or bad:
        raise _fail(path, claim_id, f"requires.{what} must name some of {list(allowed)}, got {value!r}")
    return names


def _precondition(raw, path, claim_id) -> Precondition:
    if not isinstance(raw, dict) or not {"id", "text"} <= set(raw) or set(raw) - {"id", "text", "min", "max"}:
        raise _fail(path, claim_id, f"each precondition needs id, text and min and/or max (nothing else), got {raw!r}")
    if raw.get("min") is None and raw.get("max") is None:
        raise _fail(path, claim_id, f"precondition '{raw['id']}' needs a min or a max bound")
    bounds = {k: float(raw[k]) for k in ("min", "max") if raw.get(k) is not None}
    return Precondition(str(raw["id"]), str(raw["text"]), **bounds)


def parse_spec(raw: Any, path: str | os.PathLike = "config") -> ClaimSpec:
    """Check one ``claims:`` entry and return it as a :class:`ClaimSpec`; ConfigError names the problem."""
    claim_id = raw.get("id", "?") if isinstance(raw, dict) else "?"
    if not isinstance(raw, dict):
        raise _fail(path, claim_id, f"expected a mapping, got {raw!r}")
    unknown = set(raw) - _SPEC_FIELDS
    if unknown:
        raise _fail(path, claim_id, f"unknown field(s) {sorted(unknown)}; allowed: {sorted(_SPEC_FIELDS)}")
    for name in ("id", "text", "source", "quantity", "test", "a"):
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise _fail(path, claim_id, f"'{name}' must be a non-empty string")
    test = raw["test"]
    if test not in TESTS:
        raise _fail(path, claim_id, f"test '{test}' is not one of {list(TESTS)}")
    comparative = test in COMPARATIVE
    if comparative != isinstance(raw.get("b"), str):
        raise _fail(path, claim_id, f"a {test} test {'needs' if comparative else 'takes no'} arm 'b'")
    if test != "superiority" and raw.get("margin") is None:
        raise _fail(path, claim_id, f"a {test} test needs a 'margin'")
    margin = float(raw.get("margin") or 0.0)
    if test in ("superiority", "noninferiority") and margin < 0 or test == "equivalence" and margin <= 0:
        raise _fail(path, claim_id, f"margin {margin} must be >= 0 (> 0 for equivalence)")
    direction = raw.get("direction", "higher")
    if direction not in ("higher", "lower"):
        raise _fail(path, claim_id, f"direction must be 'higher' or 'lower', got {direction!r}")
    min_seeds = raw.get("min_seeds", 5 if comparative else 1)
    if not isinstance(min_seeds, int) or min_seeds < 1 or comparative and min_seeds < 2:
        raise _fail(path, claim_id, f"min_seeds must be an integer >= {2 if comparative else 1}, got {min_seeds!r}")
    requires = raw.get("requires") or {}
    if not isinstance(requires, dict) or set(requires) - {"profile", "data"}:
        raise _fail(path, claim_id, f"requires takes 'profile' and/or 'data', got {requires!r}")
    preconditions = tuple(_precondition(p, path, claim_id) for p in raw.get("preconditions") or ())
    if len({p.id for p in preconditions}) != len(preconditions):
        raise _fail(path, claim_id, "precondition ids must be unique")
    return ClaimSpec(
        id=raw["id"], text=raw["text"], source=raw["source"], quantity=raw["quantity"], test=test, a=raw["a"],
        b=raw.get("b"), margin=margin, direction=direction, min_seeds=min_seeds,
        profiles=_names(requires.get("profile", PROFILES), PROFILES, "profile", path, claim_id),
        data=_names(requires.get("data", ("embedded", "real")), ("embedded", "real"), "data", path, claim_id),
        preconditions=preconditions, paper_value=raw.get("paper_value"), why=str(raw.get("why") or ""),
    )


def load_specs(key: str, root: str | os.PathLike | None = None) -> dict[str, ClaimSpec]:
    """Every claim work ``key`` declares, by id; ConfigError if there are none."""
    path, entries = work_claims(key, root)
    if not entries:
        raise ConfigError(
            f"{path} declares no claims: add a 'claims:' list (id, text, source, quantity, test, a, b, margin, "
            f"preconditions; see snnlib/claims.py) before running the {key} notebook"
        )
    specs = [parse_spec(entry, path) for entry in entries]
    ids = [s.id for s in specs]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: claim ids must be unique, got {ids}")
    return {s.id: s for s in specs}


@dataclass
class Claim:
    """One claim of a paper, its criterion, and what this run measured for it."""

    id: str
    text: str
    source: str
    quantity: str
    test: str
    criterion: str
    verdict: str
    reason: str = ""
    a: str = ""
    b: str | None = None
    n: int = 0
    estimate: float | None = None
    interval: list | None = None
    confidence: float | None = None
    p_value: float | None = None
    method: str = ""
    preconditions: list = field(default_factory=list)
    measured: Any = None
    paper_value: Any = None
    why: str = ""
    note: str = ""


def _decide(spec: ClaimSpec, low: float, high: float) -> str:
    """The verdict of an interval (oriented so that larger is better for A) against the margin."""
    m = spec.margin
    if spec.test == "equivalence":
        return "reproduced" if -m < low and high < m else "not reproduced" if high < -m or low > m else "inconclusive"
    if spec.test in ("ratio", "threshold") and spec.direction == "lower":
        return "reproduced" if high < m else "not reproduced" if low > m else "inconclusive"
    bound = -m if spec.test == "noninferiority" else m
    return "reproduced" if low > bound else "not reproduced" if high < bound else "inconclusive"


def _interval(spec: ClaimSpec, a, b) -> tuple[stats.Interval, float, float]:
    """The claim's interval, and its (low, high) oriented for :func:`_decide`."""
    if spec.test == "equivalence":
        _, iv = stats.tost(a, b, spec.margin)
        return iv, iv.low, iv.high
    if spec.test == "ratio":
        iv = stats.ratio_interval(a, b)
        return iv, iv.low, iv.high
    if spec.test == "threshold":
        iv = stats.mean_interval(a)
        return iv, iv.low, iv.high
    iv = stats.paired_difference(a, b)
    return (iv, -iv.high, -iv.low) if spec.direction == "lower" else (iv, iv.low, iv.high)


@dataclass
class ClaimLedger:
    """The claims of one work on one run (profile, data mode, seeds), judged against their specs."""

    key: str
    profile: str
    data: str = "embedded"
    seeds: list[int] = field(default_factory=list)
    specs: dict[str, ClaimSpec] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)

    def __post_init__(self):
        if self.profile not in PROFILES:
            raise ValueError(f"profile '{self.profile}' is not one of {list(PROFILES)}")
        if self.data not in ("embedded", "real"):
            raise ValueError(f"data '{self.data}' is not 'embedded' or 'real'")

    @classmethod
    def from_config(cls, key: str, profile: str, data: str = "embedded", seeds=(), root=None) -> ClaimLedger:
        """A ledger for work ``key`` holding the claims of ``config/<key>.yaml``."""
        return cls(key, profile, data, [int(s) for s in seeds], load_specs(key, root))

    def _spec(self, claim_id: str) -> ClaimSpec:
        if claim_id not in self.specs:
            raise KeyError(f"claim '{claim_id}' is not declared in config/{self.key}.yaml; declared: {sorted(self.specs)}")
        if any(c.id == claim_id for c in self.claims):
            raise ValueError(f"claim '{claim_id}' was already judged on this run")
        return self.specs[claim_id]

    def _base(self, spec: ClaimSpec, verdict: str, reason: str, measured, note) -> Claim:
        return Claim(id=spec.id, text=spec.text, source=spec.source, quantity=spec.quantity, test=spec.test,
                     criterion=spec.criterion, verdict=verdict, reason=reason, a=spec.a, b=spec.b,
                     measured=_plain(measured), paper_value=_plain(spec.paper_value), why=spec.why, note=note)

    def untested(self, claim_id: str, reason: str, *, measured: Any = None, note: str = "") -> Claim:
        """Record that this run cannot test the claim, and why."""
        spec = self._spec(claim_id)
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("say why the claim is untested (a non-empty reason)")
        claim = self._base(spec, "untested", reason, measured, note)
        self.claims.append(claim)
        return claim

    def _preconditions(self, spec: ClaimSpec, given: dict | None) -> list[dict]:
        given = dict(given or {})
        declared = {p.id for p in spec.preconditions}
        if set(given) != declared:
            raise ValueError(
                f"claim '{spec.id}': pass a value for each declared precondition {sorted(declared)}, got {sorted(given)}"
            )
        return [{"id": p.id, "text": p.text, "bounds": p.bounds(), "value": _plain(given[p.id]),
                 "held": p.holds(given[p.id])} for p in spec.preconditions]

    def judge(self, claim_id: str, *, a, b=None, preconditions: dict | None = None, measured: Any = None,
              note: str = "") -> Claim:
        """Judge a declared claim on per-seed values ``a`` (and ``b``) of its two arms."""
        spec = self._spec(claim_id)
        if (b is None) == (spec.test in COMPARATIVE):
            raise ValueError(f"claim '{claim_id}' is a {spec.test} test: {'pass' if b is None else 'do not pass'} b")
        checks = self._preconditions(spec, preconditions)
        if b is None:
            n = np.asarray(a, dtype=float).size
        else:
            a, b = stats.align(a, b)
            n = a.size
        iv, low, high = _interval(spec, a, b)
        reasons = []
        if self.profile not in spec.profiles or self.data not in spec.data:
            reasons.append(f"needs profile {list(spec.profiles)} with data {list(spec.data)}; "
                           f"this run is {self.profile}/{self.data}")
        if n < spec.min_seeds:
            reasons.append(f"{n} seed(s), the test needs >= {spec.min_seeds}")
        reasons += [f"precondition '{c['id']}' failed: {c['value']} is not {c['bounds']}" for c in checks if not c["held"]]
        verdict = "untested" if reasons else _decide(spec, low, high)
        claim = self._base(spec, verdict, "; ".join(reasons), measured, note)
        claim.n, claim.estimate, claim.interval = n, _plain(iv.estimate), [_plain(iv.low), _plain(iv.high)]
        claim.confidence, claim.p_value, claim.method, claim.preconditions = iv.confidence, _plain(iv.p_value), iv.method, checks
        self.claims.append(claim)
        return claim

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "profile": self.profile,
            "data": self.data,
            "seeds": list(self.seeds),
            "snnlib_version": __version__,
            "claims": [asdict(c) for c in self.claims],
        }

    def save(self, root: str | os.PathLike | None = None) -> Path:
        """Write ``results/<key>/claims.json`` atomically and return its path."""
        missing = [cid for cid in self.specs if not any(c.id == cid for c in self.claims)]
        if missing:
            raise ValueError(f"{self.key}: claim(s) {missing} of config/{self.key}.yaml were neither judged nor "
                             "marked untested; call ledger.judge or ledger.untested for each")
        if not self.claims:
            raise ValueError(f"no claims recorded for {self.key}: record at least one before saving")
        return write_json(results_dir(self.key, root) / "claims.json", self.to_dict())


def _plain(value: Any) -> Any:
    """numpy/torch numbers to Python numbers, NaN/inf to None, recursively."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def load(path: str | os.PathLike) -> dict:
    """Read one claims.json, checking the fields a ledger writes."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read claims ({err}); rerun the work's notebook") from err
    missing = {"key", "profile", "claims"} - set(data)
    if missing:
        raise ValueError(f"{path}: missing field(s) {sorted(missing)}; rerun the work's notebook")
    return data


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _estimate(c: dict) -> str:
    """'0.12 [0.05, 0.19] (n=5)' or '–' for a claim that was not measured."""
    if c.get("estimate") is None:
        return "–"
    low, high = c.get("interval") or [None, None]
    return f"{_fmt(c['estimate'])} [{_fmt(low)}, {_fmt(high)}] (n={c.get('n')})"


def _preconditions_text(c: dict) -> str:
    return "; ".join(f"{p['id']} {'✓' if p['held'] else '✗'} ({_fmt(p['value'])} {p['bounds']})"
                     for p in c.get("preconditions") or []) or "–"


def summary_table(ledgers: list[dict]) -> str:
    """Markdown table: one row per work with its counts of each verdict."""
    rows = ["| work | profile | data | " + " | ".join(VERDICTS) + " |", "|---|---|---|" + "---|" * len(VERDICTS)]
    for ledger in ledgers:
        counts = [sum(c["verdict"] == v for c in ledger["claims"]) for v in VERDICTS]
        rows.append(f"| [{ledger['key']}](results/{ledger['key']}/claims.json) | {ledger['profile']} | "
                    f"{ledger.get('data', '')} | " + " | ".join(map(str, counts)) + " |")
    return "\n".join(rows)


def claims_markdown(ledgers: list[dict]) -> str:
    """The full ledger: the summary table, then every claim of every work."""
    parts = ["# Claims against measurements", "", summary_table(ledgers), "",
             "Estimates are A - B (or the ratio / the mean of A) with their interval over seeds; "
             "`untested` says why this run could not test the claim.", ""]
    for ledger in ledgers:
        parts += [
            f"## {ledger['key']} ({ledger['profile']} profile, {ledger.get('data', '')} data, seeds {ledger.get('seeds', [])})",
            "",
            "| claim | source | quantity | criterion | estimate [interval] | preconditions | paper | verdict | reason / note |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for c in ledger["claims"]:
            reason = "; ".join(x for x in (c.get("reason"), c.get("note")) if x) or None
            parts.append(
                f"| {_fmt(c['text'])} | {_fmt(c['source'])} | {_fmt(c['quantity'])} | {_fmt(c['criterion'])} | "
                f"{_estimate(c)} | {_preconditions_text(c)} | {_fmt(c.get('paper_value'))} | **{c['verdict']}** | "
                f"{_fmt(reason)} |"
            )
        parts.append("")
    return "\n".join(parts)


def gather(claim_files: list[str | os.PathLike], out: str | os.PathLike) -> list[dict]:
    """Write ``out`` (results/claims.md) from the given claims.json files, sorted by work."""
    ledgers = sorted((load(p) for p in claim_files), key=lambda d: d["key"])
    if not ledgers:
        text = "# Claims against measurements\n\nNo work has recorded claims yet.\n"
    else:
        text = claims_markdown(ledgers)
    write_text(out, text)
    return ledgers


def update_readme(readme: str | os.PathLike, ledgers: list[dict]) -> bool:
    """Replace the README text between the claims markers with the summary table.

    Returns whether the file changed. Raises if the markers are missing or out of order.
    """
    readme = Path(readme)
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{readme}: add the lines '{README_START}' and '{README_END}' where the results table goes")
    table = summary_table(ledgers) if ledgers else "No work has recorded claims yet."
    new = text[: start + len(README_START)] + "\n" + table + "\n" + text[end:]
    if new == text:
        return False
    write_text(readme, new)
    return True
