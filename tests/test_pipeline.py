"""The whole Snakemake pipeline on the smoke profile, in a temporary copy of the project.

A demo work (notebook + config written here) joins the real ones so that the generic paper
rule is exercised whatever works the repository holds: its figure, table and claims must
appear, a second run must do nothing, deleting one figure must rerun only that work, a
killed run must restart cleanly, and a bad config value must be refused by name.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.pipeline
SLOW_CLAIMS = "runs/smoke-embedded/results/slow/claims.json"

DEMO_CONFIG = """
common: {n_points: 50}
smoke: {pause_s: 0}
default: {pause_s: 0}
paper: {pause_s: 0}
outputs:
  figures: {line: "A demo line plot written by the demo work."}
  tables: {values: "The demo values."}
claims:
  - id: square
    text: "The square of 0.5 is at least 0.2."
    source: arithmetic
    quantity: "y(0.5)"
    test: threshold
    a: y(0.5)
    margin: 0.2
"""

DEMO_CODE = """
import time
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from snnlib.claims import ClaimLedger
from snnlib.config import load_work_config, figures_dir, results_dir
from snnlib.io import atomic_path, atomic_write

cfg = load_work_config("{key}", profile)
x = np.linspace(0, 1, cfg["n_points"])
fig, ax = plt.subplots()
ax.plot(x, x ** 2)
for suffix in ("png", "pdf"):
    with atomic_path(figures_dir("{key}") / f"line.{{suffix}}") as tmp:
        fig.savefig(tmp)
time.sleep(cfg["pause_s"])
with atomic_write(results_dir("{key}") / "values.csv") as handle:
    pd.DataFrame({{"x": x, "y": x ** 2}}).to_csv(handle, index=False)
ledger = ClaimLedger.from_config("{key}", profile, data, seeds)
ledger.judge("square", a=[0.5 ** 2])
ledger.save()
"""


def add_demo_work(root: Path, key: str, pause_s: float = 0) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "default"\ndata = "embedded"\ndevice = "auto"\nseeds = [0]')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(DEMO_CODE.format(key=key))]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, root / "notebooks" / "papers" / f"{key}.ipynb")
    (root / "config" / f"{key}.yaml").write_text(DEMO_CONFIG.replace("smoke: {pause_s: 0}", f"smoke: {{pause_s: {pause_s}}}"))


def copy_project(dest: Path) -> Path:
    """The repository's files (tracked and untracked, not ignored), with data/ shared."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.split()
    for name in files:
        src = ROOT / name
        if src.is_file() and not name.startswith(("data/", "results/", "figures/")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    (ROOT / "data").mkdir(exist_ok=True)
    (dest / "data").symlink_to(ROOT / "data")
    for folder in ("notebooks/papers", "results", "figures"):
        (dest / folder).mkdir(parents=True, exist_ok=True)
    return dest


def snakemake(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [str(BIN / "snakemake"), "--cores", "2", *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=3000,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def planned_rules(root: Path) -> set[str]:
    """Rules a dry run of `all` would execute."""
    out = snakemake(root, "-n", "--quiet", "rules", "all", "--config", "profile=smoke", "seeds=[0,1]").stdout
    lines = [line.split() for line in out.splitlines()]
    return {parts[0] for parts in lines if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total"}


@pytest.fixture(scope="module")
def smoke_project(tmp_path_factory):
    root = copy_project(tmp_path_factory.mktemp("project"))
    add_demo_work(root, "demo_a")
    add_demo_work(root, "demo_b")
    (root.parent / "README.before").write_text((root / "README.md").read_text())
    snakemake(root, "all", "--config", "profile=smoke", "seeds=[0,1]")
    return root


def test_smoke_pipeline_writes_every_declared_output(smoke_project):
    root = smoke_project
    run = root / "runs" / "smoke-embedded"  # a smoke run never writes over the default run's results/
    works = sorted(p.stem for p in (root / "notebooks" / "papers").glob("*.ipynb"))
    for key in works:
        claims = json.loads((run / "results" / key / "claims.json").read_text())
        assert claims["profile"] == "smoke" and claims["claims"], key
        assert (run / "results" / key / f"{key}.ipynb").is_file()
    assert (run / "figures" / "demo_a" / "line.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run / "figures" / "demo_a" / "line.pdf").read_bytes()[:5] == b"%PDF-"
    assert (run / "results" / "demo_a" / "values.csv").read_text().startswith("x,y")
    for tutorial in (root / "notebooks" / "tutorials").glob("*.ipynb"):
        assert (root / "results" / "tutorials" / tutorial.name).is_file()
    ledger = (run / "results" / "claims.md").read_text()
    assert all(f"## {key} (smoke profile" in ledger for key in works)
    assert not any((root / folder / "demo_a").exists() for folder in ("results", "figures"))
    assert (root / "README.md").read_text() == (root.parent / "README.before").read_text()  # only a default run updates it
    usage = re.search(r"job usage: ([0-9.]+) s wall, ([0-9.]+) s CPU", (run / "logs" / "demo_a.log").read_text())
    assert usage and float(usage[1]) > 0 and float(usage[2]) > 1.0  # the kernel's imports alone take seconds of CPU


def test_only_the_default_embedded_run_updates_the_readme(smoke_project):
    def claims_command(*config):
        out = snakemake(smoke_project, "-n", "-p", "-F", "results/claims.md", "--config", *config).stdout
        return next(line for line in out.splitlines() if "snnlib.pipeline claims" in line)

    assert "--readme README.md" in claims_command("profile=default")
    out = snakemake(smoke_project, "-n", "-p", "-F", "runs/smoke-embedded/results/claims.md", "--config",
                    "profile=smoke", "seeds=[0,1]").stdout
    assert "snnlib.pipeline claims" in out and "--readme" not in out


def test_second_run_does_nothing(smoke_project):
    assert planned_rules(smoke_project) == set()


def test_deleting_a_figure_reruns_only_its_work(smoke_project):
    figure = smoke_project / "runs" / "smoke-embedded" / "figures" / "demo_a" / "line.png"
    figure.unlink()
    assert planned_rules(smoke_project) == {"paper_demo_a", "claims", "all"}
    snakemake(smoke_project, "all", "--config", "profile=smoke", "seeds=[0,1]")
    assert figure.is_file()
    assert planned_rules(smoke_project) == set()


def test_report_has_every_figure_with_its_caption(smoke_project):
    snakemake(smoke_project, "--report", "report.html", "--config", "profile=smoke", "seeds=[0,1]")
    html = (smoke_project / "report.html").read_text(errors="replace")
    assert "line.png" in html and "values.csv" in html
    assert "A demo line plot written by the demo work." in html and "The demo values." in html


@pytest.mark.parametrize(
    "override, key",
    [("profile=fast", "profile"), ("device=gpu", "device"), ("seeds=[]", "seeds"), ("data=web", "data")],
)
def test_bad_config_value_is_refused_by_name(smoke_project, override, key):
    result = snakemake(smoke_project, "-n", "all", "--config", override, check=False)
    assert result.returncode != 0
    assert f"config key '{key}'" in result.stdout + result.stderr


def test_missing_gpu_and_missing_real_data_are_refused_before_any_job(smoke_project):
    result = snakemake(smoke_project, "-n", "all", "--config", "device=cuda", check=False)
    assert result.returncode != 0 and "device=cuda, but torch sees no CUDA GPU" in result.stdout + result.stderr
    result = snakemake(smoke_project, "-n", "all", "--config", "data=real", check=False)
    text = result.stdout + result.stderr
    assert result.returncode != 0 and "data=real, but these original data sets are missing" in text
    # every missing set of every work at once, not only the first work's
    assert all(name in text for name in ("nmnist (used by he2020)", "cifar100 (used by jiang2025)", "ssc (used by xu2025)"))


def test_killed_run_restarts_cleanly(tmp_path):
    root = copy_project(tmp_path)
    add_demo_work(root, "slow", pause_s=30)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "MPLBACKEND": "Agg"}
    proc = subprocess.Popen(
        [str(BIN / "snakemake"), "--cores", "1", SLOW_CLAIMS, "--config", "profile=smoke", "seeds=[0,1]"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    figure = root / "runs" / "smoke-embedded" / "figures" / "slow" / "line.png"
    deadline = time.time() + 120
    while not figure.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert figure.exists(), "the slow notebook never reached its pause"
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)
    leftovers = lambda: list((root / SLOW_CLAIMS).parent.glob("*.tmp*"))  # noqa: E731
    deadline = time.time() + 30  # the job's processes finish unwinding after snakemake exits
    while leftovers() and time.time() < deadline:
        time.sleep(0.2)
    assert not leftovers()
    assert not (root / SLOW_CLAIMS).exists()
    (root / "config" / "slow.yaml").write_text(DEMO_CONFIG)  # no pause this time
    snakemake(root, SLOW_CLAIMS, "--config", "profile=smoke", "seeds=[0,1]")
    assert json.loads((root / SLOW_CLAIMS).read_text())["claims"]
    assert (root / SLOW_CLAIMS).with_name("slow.ipynb").is_file()
