"""Run configuration schema and per-work YAML validation."""

import re
from pathlib import Path

import pytest
import yaml

from snnlib.config import (
    ConfigError,
    load_work_config,
    load_work_outputs,
    project_root,
    validate_run_config,
)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schema.yaml"


def run_config(**changes):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config.update(changes)
    return config


def test_committed_run_config_is_valid():
    assert validate_run_config(run_config(), SCHEMA)["profile"] in {"smoke", "default", "paper"}


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"profile": "fast"}, "profile"),
        ({"data": "internet"}, "data"),
        ({"device": "gpu0"}, "device"),
        ({"seeds": []}, "seeds"),
        ({"seeds": [0, -1]}, "seeds"),
        ({"seeds": ["zero"]}, "seeds[0]"),
        ({"seeds": [1, 1]}, "seeds"),
        ({"epochs": 3}, "<top level>"),
    ],
)
def test_bad_run_config_names_the_key(changes, key):
    with pytest.raises(ConfigError, match=re.escape(f"config key '{key}'")):
        validate_run_config(run_config(**changes), SCHEMA)


def test_seeds_from_the_command_line_arrive_as_strings_and_are_accepted():
    # `snakemake --config seeds=[0,1]` passes the list items as strings
    assert validate_run_config(run_config(seeds=["0", "1"]), SCHEMA)["seeds"] == [0, 1]
    for seeds in (["0", "-1"], [-3]):
        with pytest.raises(ConfigError, match=r"seed -\d is negative; seeds are integers >= 0"):
            validate_run_config(run_config(seeds=seeds), SCHEMA)


def test_missing_key_is_refused():
    config = run_config()
    del config["device"]
    with pytest.raises(ConfigError, match="device"):
        validate_run_config(config, SCHEMA)


def write_work(tmp_path, text):
    (tmp_path / "Snakefile").write_text("")
    (tmp_path / "snnlib").mkdir(exist_ok=True)
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "demo.yaml").write_text(text)
    return tmp_path


GOOD = """
common: {hidden: 32, lr: 0.001}
smoke: {epochs: 1, n_train: 16}
default: {epochs: 5, n_train: 500}
paper: {epochs: 100, n_train: null, lr: 0.0001}
outputs:
  figures: {curves: "Training curves."}
  tables: {accuracy: "Accuracy per model."}
  models: {snn: "The trained SNN in NIR."}
"""


def test_work_config_merges_common_under_each_profile(tmp_path):
    root = write_work(tmp_path, GOOD)
    assert load_work_config("demo", "smoke", root) == {"hidden": 32, "lr": 0.001, "epochs": 1, "n_train": 16}
    assert load_work_config("demo", "paper", root)["lr"] == 0.0001
    outputs = load_work_outputs("demo", root)
    assert outputs.figures == {"curves": "Training curves."}
    assert outputs.tables == {"accuracy": "Accuracy per model."}
    assert outputs.models == {"snn": "The trained SNN in NIR."}


@pytest.mark.parametrize(
    "text, message",
    [
        (GOOD.replace("paper: {epochs: 100, n_train: null, lr: 0.0001}", ""), "section 'paper'"),
        (GOOD.replace("smoke: {epochs: 1, n_train: 16}", "smoke: {epochs: 1}"), r"\['n_train'\]"),
        (GOOD.replace("epochs: 5,", "epochs: five,"), "'smoke.epochs' is int"),
        (GOOD + "\nextras: {a: 1}\n", "unknown section"),
        (GOOD.replace('curves: "Training curves."', "curves: [1]"), "outputs.figures"),
        ("- just\n- a list\n", "expected a mapping"),
        ("smoke: {a: [1\n", "not valid YAML"),
    ],
)
def test_bad_work_config_is_refused_with_the_reason(tmp_path, text, message):
    root = write_work(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        load_work_config("demo", "default", root)
        load_work_outputs("demo", root)


def test_unknown_profile_and_missing_file(tmp_path):
    root = write_work(tmp_path, GOOD)
    with pytest.raises(ConfigError, match="profile 'fast'"):
        load_work_config("demo", "fast", root)
    with pytest.raises(ConfigError, match="does not exist"):
        load_work_config("nothere", "default", root)


def test_project_root_found_from_a_subfolder(tmp_path):
    assert project_root(ROOT / "snnlib") == ROOT
    with pytest.raises(ConfigError, match="no snn-compendium project"):
        project_root(tmp_path)
