"""The install files agree: pyproject, environment.yml and the lock pin the same versions."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def pins(lines):
    found = {}
    for line in lines:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)==([^\s;#]+)\s*", line)
        if match:
            found[match[1].lower().replace("_", "-")] = match[2]
    return found


def test_pyproject_environment_and_lock_pin_the_same_versions():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = pins(project["dependencies"] + project["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    lock = pins((ROOT / "requirements.lock").read_text().splitlines())
    assert pins(pip_section) == declared
    for name, version in declared.items():
        assert lock.get(name) == version, f"{name}: pyproject {version}, lock {lock.get(name)}"


def test_lock_keeps_the_cpu_torch_and_never_torchvision_or_cuda():
    lock = pins((ROOT / "requirements.lock").read_text().splitlines())
    assert lock["torch"] == "2.13.0"
    assert lock["spikingjelly"] == "2.0.0"
    assert not {"torchvision", "torchaudio"} & set(lock)
    assert not [name for name in lock if name.startswith("nvidia-")]
    assert (ROOT / "constraints.txt").read_text().splitlines()[-1] == "torch==2.13.0"


def make_dry_run(*args):
    import subprocess

    return subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True)


def test_gpu_setup_takes_torch_from_the_named_index_and_keeps_the_release():
    out = make_dry_run("-B", ".venv/.installed", "TORCH_INDEX=https://example.invalid/whl/cu126").stdout
    line = next(x for x in out.splitlines() if "install --quiet torch==" in x)
    assert "torch==2.13.0 --index-url https://example.invalid/whl/cu126" in line
    plain = make_dry_run("-B", ".venv/.installed").stdout
    assert "--index-url" not in plain


def test_report_without_results_says_to_reproduce_first(tmp_path):
    import shutil
    import subprocess

    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    for name in ("requirements.lock", "constraints.txt", "pyproject.toml"):
        (tmp_path / name).write_text("")
    (tmp_path / ".venv" / ".installed").touch()  # set-up done: only the report step runs
    result = subprocess.run(["make", "report"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0 and "run 'make reproduce' first" in result.stdout
