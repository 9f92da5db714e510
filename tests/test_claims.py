"""Claims declared in config and judged by snnlib.claims: specs, the four verdicts, the ledger files."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from snnlib import claims
from snnlib.claims import ClaimLedger, parse_spec
from snnlib.config import ConfigError

SEEDS = [0, 1, 2, 3, 4]
BASE = {"text": "A beats B", "source": "Sec. 4", "quantity": "test accuracy", "a": "A", "b": "B"}
PROFILES = {"smoke": {}, "default": {}, "paper": {}}


def make_root(tmp_path, key="demo", claim_list=None):
    (tmp_path / "Snakefile").write_text("")
    (tmp_path / "snnlib").mkdir(exist_ok=True)
    (tmp_path / "config").mkdir(exist_ok=True)
    config = dict(PROFILES)
    if claim_list is not None:
        config["claims"] = claim_list
    (tmp_path / "config" / f"{key}.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def spec(**fields):
    return {"id": "c1", **BASE, **fields}


def ledger_for(tmp_path, *claim_list, profile="default", data="embedded", key="demo"):
    root = make_root(tmp_path, key, list(claim_list))
    return ClaimLedger.from_config(key, profile, data, SEEDS, root=root), root


GAIN = np.array([0.05, 0.06, 0.04, 0.05, 0.07])  # clearly positive paired differences
B = np.array([0.70, 0.72, 0.69, 0.71, 0.73])


@pytest.mark.parametrize(
    ("fields", "a", "verdict"),
    [
        ({"test": "superiority", "margin": 0.0}, B + GAIN, "reproduced"),
        ({"test": "superiority", "margin": 0.2}, B + GAIN, "not reproduced"),  # real but smaller than the margin
        ({"test": "superiority", "margin": 0.0}, B + np.array([0.05, -0.04, 0.03, -0.02, 0.01]), "inconclusive"),
        ({"test": "superiority", "margin": 0.0, "direction": "lower"}, B - GAIN, "reproduced"),
        ({"test": "superiority", "margin": 0.0, "direction": "lower"}, B + GAIN, "not reproduced"),
        ({"test": "noninferiority", "margin": 0.02}, B - 0.01 + GAIN / 10, "reproduced"),
        ({"test": "noninferiority", "margin": 0.02}, B - GAIN, "not reproduced"),
        ({"test": "equivalence", "margin": 0.05}, B + np.array([0.01, -0.01, 0.0, 0.005, -0.005]), "reproduced"),
        ({"test": "equivalence", "margin": 0.02}, B + GAIN, "not reproduced"),
        ({"test": "ratio", "margin": 1.05}, B * 1.2 + GAIN / 10, "reproduced"),
        ({"test": "ratio", "margin": 0.6, "direction": "lower"}, B * 0.5 + GAIN / 10, "reproduced"),
        ({"test": "ratio", "margin": 0.6, "direction": "lower"}, B * 0.9 + GAIN / 10, "not reproduced"),
    ],
)
def test_verdict_follows_the_interval_against_the_margin(tmp_path, fields, a, verdict):
    ledger, _ = ledger_for(tmp_path, spec(**fields))
    claim = ledger.judge("c1", a=a, b=B)
    assert claim.verdict == verdict, (claim.estimate, claim.interval)
    assert claim.n == 5 and len(claim.interval) == 2


def test_threshold_claims(tmp_path):
    ledger, _ = ledger_for(tmp_path, spec(test="threshold", b=None, margin=0.5),
                           spec(id="c2", test="threshold", b=None, margin=0.5, direction="lower"))
    assert ledger.judge("c1", a=[0.8, 0.82, 0.79]).verdict == "reproduced"
    assert ledger.judge("c2", a=[0.8]).verdict == "not reproduced"  # n = 1: the value itself


def test_interval_agrees_with_snnlib_stats(tmp_path):
    from snnlib import stats

    ledger, _ = ledger_for(tmp_path, spec(test="superiority"))
    claim = ledger.judge("c1", a=B + GAIN, b=B)
    iv = stats.paired_difference(B + GAIN, B)
    assert claim.interval == pytest.approx([iv.low, iv.high]) and claim.p_value == pytest.approx(iv.p_value)


def test_failed_precondition_gives_untested_never_not_reproduced(tmp_path):
    pre = [{"id": "above_chance", "text": "both arms >= 0.6", "min": 0.6},
           {"id": "memoryless_fails", "text": "MLP <= 0.55", "max": 0.55}]
    ledger, _ = ledger_for(tmp_path, spec(test="superiority", margin=0.3, preconditions=pre))
    claim = ledger.judge("c1", a=B + GAIN, b=B, preconditions={"above_chance": [0.75, 0.71], "memoryless_fails": 0.9})
    assert claim.verdict == "untested"  # the criterion alone would say "not reproduced"
    assert "memoryless_fails" in claim.reason and "0.9" in claim.reason
    held = {p["id"]: p["held"] for p in claim.preconditions}
    assert held == {"above_chance": True, "memoryless_fails": False}


def test_preconditions_must_be_given_exactly(tmp_path):
    pre = [{"id": "converged", "text": "last-epoch loss change < 0.01", "max": 0.01}]
    ledger, _ = ledger_for(tmp_path, spec(test="superiority", preconditions=pre))
    with pytest.raises(ValueError, match="converged"):
        ledger.judge("c1", a=B + GAIN, b=B)
    with pytest.raises(ValueError, match="converged"):
        ledger.judge("c1", a=B + GAIN, b=B, preconditions={"converged": 0.0, "other": 1})
    assert ledger.judge("c1", a=B + GAIN, b=B, preconditions={"converged": float("nan")}).verdict == "untested"


def test_too_few_seeds_or_wrong_profile_is_untested(tmp_path):
    ledger, _ = ledger_for(tmp_path, spec(test="superiority"), spec(id="c2", test="threshold", b=None, margin=0.9,
                                                                    requires={"profile": "paper", "data": ["real"]}))
    few = ledger.judge("c1", a=[0.9, 0.8], b=[0.5, 0.4])
    assert few.verdict == "untested" and "2 seed(s)" in few.reason
    assert ledger.judge("c2", a=[0.95]).verdict == "untested"


def test_untested_by_the_notebook_and_save_refuses_unjudged_claims(tmp_path):
    ledger, root = ledger_for(tmp_path, spec(test="superiority"), spec(id="c2", test="superiority"))
    ledger.judge("c1", a=pd.Series(B + GAIN, index=SEEDS), b=pd.Series(B, index=SEEDS), measured={"x": np.float32(1)})
    with pytest.raises(ValueError, match=r"\['c2'\].*neither judged"):
        ledger.save(root)
    with pytest.raises(ValueError, match="say why"):
        ledger.untested("c2", " ")
    ledger.untested("c2", "needs the paper profile")
    with pytest.raises(ValueError, match="already judged"):
        ledger.untested("c2", "again")
    with pytest.raises(KeyError, match="not declared"):
        ledger.judge("c9", a=B, b=B)
    data = json.loads(ledger.save(root).read_text())
    assert [c["verdict"] for c in data["claims"]] == ["reproduced", "untested"]
    assert data["claims"][0]["criterion"].startswith("A - B > 0")
    assert data["claims"][0]["measured"] == {"x": 1.0}


def test_missing_claims_section_names_the_file(tmp_path):
    root = make_root(tmp_path, "nowork", None)
    with pytest.raises(ConfigError, match=r"nowork\.yaml declares no claims"):
        ClaimLedger.from_config("nowork", "default", root=root)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"test": "bigger"}, "not one of"),
        ({"test": "ratio"}, "needs a 'margin'"),
        ({"test": "threshold", "margin": 1}, "takes no arm 'b'"),
        ({"test": "equivalence", "margin": 0}, "must be >= 0"),
        ({"test": "superiority", "direction": "up"}, "direction"),
        ({"test": "superiority", "min_seeds": 1}, "min_seeds"),
        ({"test": "superiority", "requires": {"profile": "fast"}}, "requires.profile"),
        ({"test": "superiority", "preconditions": [{"id": "p", "text": "t"}]}, "min or a max"),
        ({"test": "superiority", "colour": "red"}, "unknown field"),
        ({"test": "superiority", "text": ""}, "'text' must be"),
    ],
)
def test_bad_specs_are_refused_by_name(fields, message):
    with pytest.raises(ConfigError, match=message):
        parse_spec(spec(**fields), "config/demo.yaml")


def test_gather_and_readme_table_count_all_four_verdicts(tmp_path):
    files = []
    for key in ("b_work", "a_work"):
        ledger, root = ledger_for(tmp_path, spec(test="superiority"), spec(id="c2", test="superiority", margin=0.5),
                                  spec(id="c3", test="superiority"), key=key)
        ledger.judge("c1", a=B + GAIN, b=B)
        ledger.judge("c2", a=B + GAIN, b=B)
        ledger.untested("c3", "paper profile only")
        files.append(ledger.save(root))
    readme = root / "README.md"
    readme.write_text(f"# Title\n\n{claims.README_START}\nold table\n{claims.README_END}\n\nrest\n")
    ledgers = claims.gather(files, root / "results" / "claims.md")
    assert [d["key"] for d in ledgers] == ["a_work", "b_work"]
    text = (root / "results" / "claims.md").read_text()
    assert text.count("**untested**") == 2 and "paper profile only" in text
    assert claims.update_readme(readme, ledgers) is True
    new = readme.read_text()
    assert "old table" not in new and new.endswith("\n\nrest\n")
    assert "| reproduced | not reproduced | inconclusive | untested |" in new
    assert "| [a_work](results/a_work/claims.json) | default | embedded | 1 | 1 | 0 | 1 |" in new
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
