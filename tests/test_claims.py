"""The claims ledger: verdicts follow the criterion, files are valid, the README table updates."""

import json

import numpy as np
import pytest

from snnlib import claims
from snnlib.claims import ClaimLedger


def make_root(tmp_path):
    (tmp_path / "Snakefile").write_text("")
    (tmp_path / "snnlib").mkdir()
    return tmp_path


def ledger_with_claims(key="demo"):
    ledger = ClaimLedger(key, profile="smoke", data="embedded", seeds=[0, 1])
    acc_snn, acc_rnn = np.float32(0.91), 0.95
    ledger.record(
        "SNNs reach accuracy comparable to RNNs",
        source="abstract",
        quantity="test accuracy",
        criterion="acc(SNN) >= acc(RNN) - 0.02",
        measured={"SNN": acc_snn, "RNN": acc_rnn},
        held=bool(acc_snn >= acc_rnn - 0.02),
        paper_value=0.9828,
    )
    ledger.record(
        "SNNs need fewer parameters",
        source="Table 3",
        quantity="parameters",
        criterion="params(SNN) < params(RNN)",
        measured=[1, 2],
        held=True,
    )
    ledger.record(
        "98.28 % on N-MNIST",
        source="secondary",
        quantity="accuracy",
        criterion="needs the paper profile",
        measured=float("nan"),
        held=None,
    )
    return ledger


def test_verdicts_follow_the_criterion_outcome(tmp_path):
    root = make_root(tmp_path)
    path = ledger_with_claims().save(root)
    data = json.loads(path.read_text())
    assert path == root / "results" / "demo" / "claims.json"
    assert [c["verdict"] for c in data["claims"]] == ["not reproduced", "reproduced", "inconclusive"]
    assert data["claims"][0]["measured"]["SNN"] == pytest.approx(0.91)
    assert data["claims"][2]["measured"] is None  # NaN is stored as null, not as invalid JSON
    assert data["seeds"] == [0, 1]


def test_bad_claims_are_refused():
    ledger = ClaimLedger("demo", profile="default")
    with pytest.raises(TypeError, match="held must be True, False or None"):
        ledger.record("x", source="s", quantity="q", criterion="c", measured=1, held="yes")
    with pytest.raises(ValueError, match="criterion must be a non-empty string"):
        ledger.record("x", source="s", quantity="q", criterion=" ", measured=1, held=True)
    ledger.record("x", source="s", quantity="q", criterion="c", measured=1, held=True)
    with pytest.raises(ValueError, match="already recorded"):
        ledger.record("x", source="s", quantity="q", criterion="c", measured=1, held=True)
    with pytest.raises(ValueError, match="profile 'fast'"):
        ClaimLedger("demo", profile="fast")
    with pytest.raises(ValueError, match="no claims recorded"):
        ClaimLedger("empty", profile="smoke").save()


def test_gather_and_readme_table(tmp_path):
    root = make_root(tmp_path)
    files = [ledger_with_claims("b_work").save(root), ledger_with_claims("a_work").save(root)]
    readme = root / "README.md"
    readme.write_text(f"# Title\n\n{claims.README_START}\nold table\n{claims.README_END}\n\nrest\n")
    ledgers = claims.gather(files, root / "results" / "claims.md")
    assert [d["key"] for d in ledgers] == ["a_work", "b_work"]
    text = (root / "results" / "claims.md").read_text()
    assert text.count("**not reproduced**") == 2 and "98.28 % on N-MNIST" in text
    assert claims.update_readme(readme, ledgers) is True
    new = readme.read_text()
    assert "old table" not in new and new.endswith("\n\nrest\n")
    assert "| [a_work](results/a_work/claims.json) | smoke | embedded | 1 | 1 | 1 |" in new
    assert claims.update_readme(readme, ledgers) is False  # idempotent


def test_readme_without_markers_and_corrupt_claims(tmp_path):
    root = make_root(tmp_path)
    (root / "README.md").write_text("# no markers\n")
    with pytest.raises(ValueError, match="claims:start"):
        claims.update_readme(root / "README.md", [])
    bad = root / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: cannot read claims"):
        claims.gather([bad], root / "out.md")
    assert not (root / "out.md").exists()
