"""A ledger of each paper's claims next to what this run measured.

Every paper notebook ends by recording its claims. A claim holds

* ``text``      -- the claim, quoted or paraphrased;
* ``source``    -- where the paper makes it (section, table, abstract);
* ``quantity``  -- what this run measured to test it;
* ``criterion`` -- the test, written out before looking at the result (e.g.
  ``"acc(SNN) >= acc(LSTM) - 2 pp"``);
* ``measured``  -- the measured value(s);
* ``verdict``   -- derived from whether the criterion held: ``reproduced`` (it held),
  ``not reproduced`` (it did not), ``inconclusive`` (it could not be evaluated on this run,
  e.g. a number that only the ``paper`` profile can reach).

The verdict is never typed by hand: :meth:`ClaimLedger.record` takes ``held`` (True, False
or None) computed by the notebook from the criterion. :meth:`ClaimLedger.save` writes
``results/<key>/claims.json``; :func:`gather` collects every work's file into
``results/claims.md`` and :func:`update_readme` puts the summary table in the README
between the markers ``<!-- claims:start -->`` and ``<!-- claims:end -->``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from snnlib import __version__
from snnlib.config import PROFILES, results_dir
from snnlib.io import write_json, write_text

VERDICTS = {True: "reproduced", False: "not reproduced", None: "inconclusive"}
README_START = "<!-- claims:start -->"
README_END = "<!-- claims:end -->"


@dataclass
class Claim:
    """One claim of a paper and what this run measured for it."""

    text: str
    source: str
    quantity: str
    criterion: str
    measured: Any
    verdict: str
    paper_value: Any = None
    note: str = ""


@dataclass
class ClaimLedger:
    """The claims of one work on one run (profile, data mode, seeds)."""

    key: str
    profile: str
    data: str = "embedded"
    seeds: list[int] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)

    def __post_init__(self):
        if self.profile not in PROFILES:
            raise ValueError(f"profile '{self.profile}' is not one of {list(PROFILES)}")

    def record(
        self,
        text: str,
        *,
        source: str,
        quantity: str,
        criterion: str,
        measured: Any,
        held: bool | None,
        paper_value: Any = None,
        note: str = "",
    ) -> Claim:
        """Add a claim; ``held`` is the outcome of ``criterion`` on ``measured``."""
        if held not in VERDICTS:
            raise TypeError(f"held must be True, False or None (not evaluable), got {held!r}")
        for name, value in (("text", text), ("source", source), ("quantity", quantity), ("criterion", criterion)):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"claim {name} must be a non-empty string")
        if any(c.text == text for c in self.claims):
            raise ValueError(f"claim already recorded: {text!r}")
        claim = Claim(text, source, quantity, criterion, _plain(measured), VERDICTS[held], _plain(paper_value), note)
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
        if not self.claims:
            raise ValueError(f"no claims recorded for {self.key}: record at least one before saving")
        return write_json(results_dir(self.key, root) / "claims.json", self.to_dict())


def _plain(value: Any) -> Any:
    """numpy/torch numbers to Python numbers, NaN to None, recursively."""
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


def summary_table(ledgers: list[dict]) -> str:
    """Markdown table: one row per work with its counts of each verdict."""
    rows = ["| work | profile | data | reproduced | not reproduced | inconclusive |", "|---|---|---|---|---|---|"]
    for ledger in ledgers:
        counts = {v: sum(c["verdict"] == v for c in ledger["claims"]) for v in VERDICTS.values()}
        rows.append(
            f"| [{ledger['key']}](results/{ledger['key']}/claims.json) | {ledger['profile']} | {ledger.get('data', '')} | "
            f"{counts['reproduced']} | {counts['not reproduced']} | {counts['inconclusive']} |"
        )
    return "\n".join(rows)


def claims_markdown(ledgers: list[dict]) -> str:
    """The full ledger: the summary table, then every claim of every work."""
    parts = ["# Claims against measurements", "", summary_table(ledgers), ""]
    for ledger in ledgers:
        parts += [
            f"## {ledger['key']} ({ledger['profile']} profile, {ledger.get('data', '')} data, seeds {ledger.get('seeds', [])})",
            "",
            "| claim | source | quantity | criterion | paper | measured | verdict | note |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c in ledger["claims"]:
            parts.append(
                f"| {_fmt(c['text'])} | {_fmt(c['source'])} | {_fmt(c['quantity'])} | {_fmt(c['criterion'])} | "
                f"{_fmt(c.get('paper_value'))} | {_fmt(c['measured'])} | **{c['verdict']}** | {_fmt(c.get('note') or None)} |"
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
