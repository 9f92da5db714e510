"""Learning-rate sweep for qin2025: one Adam learning rate per core, chosen on held-out seeds.

Run once, offline, before the default run; its choice is copied by hand into config/qin2025.yaml
(`default: lr:`) with a commit that says so. The notebook never reads this script's output.

What is run. Every core of the default profile (`cores` in config/qin2025.yaml) on the default
profile's memory task and PPO settings, at each learning rate of LRS, for the sweep seeds SEEDS
(100, 101: disjoint from the run's seeds 0-4, so the lr is not chosen on the runs that are judged).
Each run is `snnlib.rl.run_job` (greedy evaluation on unseen episode seeds); the grid goes through
`snnlib.experiment.run_grid` (cached, two worker processes with one torch thread each).

How a learning rate is chosen, per core: the highest mean greedy evaluation return over the sweep
seeds; ties (e.g. every lr at chance for a memoryless core) go to the highest mean training return
over the last quarter of training (what learnt more, sooner), then to the smaller lr.

Usage: PYTHONPATH=. python sweeps/qin2025_lr.py [--csv results/qin2025_lr_sweep.csv]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from snnlib import rl
from snnlib.config import load_work_config
from snnlib.experiment import run_grid
from snnlib.io import write_csv

LRS = (0.001, 0.003, 0.01)
SEEDS = (100, 101)


def sweep_run(arm: str, params: dict, seed: int) -> dict:
    """One (core, lr) run on the memory task: greedy final return and late training return."""
    result = rl.run_job({**params, "seed": seed})
    history = pd.DataFrame(result["history"])
    late = history.mean_return.iloc[-max(1, len(history) // 4):].mean()
    return {"core": params["core"], "lr": params["config"]["lr"], "final_return": float(np.mean(result["eval_returns"])),
            "late_train_return": float(late), "cpu_seconds": result["cpu_seconds"]}


def choose(table: pd.DataFrame) -> pd.DataFrame:
    """Per core, the lr with the best mean final return, then late training return, then the smaller lr."""
    means = table.groupby(["core", "lr"], as_index=False)[["final_return", "late_train_return"]].mean()
    means = means.sort_values(["core", "final_return", "late_train_return", "lr"], ascending=[True, False, False, True])
    return means.groupby("core", as_index=False).first()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", default="results/qin2025_lr_sweep.csv")
    args = parser.parse_args()
    cfg = load_work_config("qin2025", "default")
    task = cfg["memory_task"]
    base = {**cfg["ppo"], "total_steps": cfg["steps"][task], "reward_scale": cfg["memory_reward_scale"]}
    arms = {f"{core} lr={lr:g}": {"task": task, "core": core, "config": {**base, "lr": lr},
                                  "eval_episodes": cfg["memory_eval_episodes"], "ops_episodes": 1}
            for core in cfg["cores"] for lr in LRS}
    table = run_grid(sweep_run, arms, list(SEEDS), key="qin2025", tag="lr_sweep").table
    write_csv(args.csv, table)
    print(table.groupby(["core", "lr"])[["final_return", "late_train_return"]].mean().round(3).to_string())
    print("chosen:")
    print(choose(table).to_string(index=False))


if __name__ == "__main__":
    main()
