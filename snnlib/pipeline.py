"""The steps the Snakefile runs, as a command line (so they work the same on a cluster node).

``python -m snnlib.pipeline notebook IN OUT --params JSON``
    Execute notebook ``IN`` with papermill, the parameters injected after its cell tagged
    ``parameters``, the kernel started in ``IN``'s folder (as JupyterLab would), and write
    the executed notebook to ``OUT`` atomically: a failed or killed run leaves no ``OUT``,
    so Snakemake reruns it. Prints one last line with the job's cost (:func:`job_usage`), which
    the Snakefile keeps in ``logs/<key>.log``.

``python -m snnlib.pipeline claims OUT CLAIMS_JSON... [--readme README.md]``
    Gather the works' ``claims.json`` into ``OUT`` (``results/claims.md``) and refresh the
    README's results table between its markers.

:func:`write_captions` writes the report captions declared in ``config/<key>.yaml``; the
Snakefile calls it when it is read, and refuses a run before any job starts when
:func:`check_device` finds the requested device absent or :func:`missing_real_data` finds an
original data set missing (``data: real``).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import signal
import sys
import time
from pathlib import Path

from snnlib import claims
from snnlib.config import ConfigError, load_work_outputs, project_root
from snnlib.io import atomic_path, write_text


def run_notebook(source: str | Path, target: str | Path, parameters: dict, *, progress: bool = False) -> Path:
    """Execute ``source`` with ``parameters`` and write the result to ``target`` atomically."""
    import papermill

    source, target = Path(source).resolve(), Path(target).resolve()
    if not source.is_file():
        raise FileNotFoundError(f"notebook {source} does not exist")
    with atomic_path(target) as tmp:
        papermill.execute_notebook(
            str(source),
            str(tmp),
            parameters=parameters,
            cwd=str(source.parent),
            progress_bar=progress,
            kernel_name="python3",
        )
    return target


def job_usage(started: float) -> str:
    """One line: wall seconds since ``started`` (a ``time.perf_counter()``), CPU seconds (user + system) of
    this process and every child it waited for (the notebook kernel, and the worker processes the kernel
    waited for), and the peak resident memory of the largest of those processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    peak_mib = max(own.ru_maxrss, children.ru_maxrss) / 1024  # kilobytes on Linux
    return f"job usage: {time.perf_counter() - started:.1f} s wall, {cpu:.1f} s CPU, peak RSS {peak_mib:.0f} MiB"


def write_captions(work_yamls: list[str | Path], out: str | Path) -> list[Path]:
    """One ``<out>/<key>/<name>.rst`` per declared figure and table, rewritten only if changed."""
    written = []
    for path in work_yamls:
        path = Path(path)
        outputs = load_work_outputs(path.stem, project_root(path.parent))
        for name, caption in {**outputs.figures, **outputs.tables}.items():
            target = Path(out) / path.stem / f"{name}.rst"
            if not target.is_file() or target.read_text() != caption + "\n":
                write_text(target, caption + "\n")
            written.append(target)
    return written


def check_device(device: str) -> None:
    """Refuse a ``cuda``/``cuda:N``/``mps`` device this machine's torch cannot use, naming the fix."""
    if not device.startswith(("cuda", "mps")):
        return
    import torch

    if device == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError("device=mps, but this torch has no usable MPS (Apple GPU) backend; use device=cpu or auto")
        return
    build = f"torch {torch.__version__}, " + (f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build")
    if not torch.cuda.is_available():
        raise ConfigError(f"device={device}, but torch sees no CUDA GPU here ({build}); use device=cpu or auto, "
                          "or install a CUDA build of torch (README: 'On a GPU')")
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise ConfigError(f"device={device}, but this machine has {torch.cuda.device_count()} CUDA device(s) "
                          f"(cuda:0 .. cuda:{torch.cuda.device_count() - 1})")


def missing_real_data(works: list[str], data_dir: str | Path = "data") -> list[str]:
    """Every problem (presence and counts, no MD5s) with the original data sets of ``works``, one line each."""
    from snnlib.data.datasets import check_dataset, datasets_for

    names = sorted({name for work in works for name in datasets_for(work)})
    lines = []
    for name in names:
        users = ", ".join(w for w in works if name in datasets_for(w))
        lines += [f"  {name} (used by {users}): {p.message}" for p in check_dataset(name, None, data_dir, md5=False)]
    return lines


def _exit_on_sigterm(signum, frame):
    """Unwind on the first SIGTERM (snakemake, SLURM, a killed process group) so the atomic
    writers remove their temporary files; ignore the repeats that would cut that short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snnlib.pipeline", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    nb = sub.add_parser("notebook", help="execute a notebook with papermill, atomically")
    nb.add_argument("source")
    nb.add_argument("target")
    nb.add_argument("--params", default="{}", help="JSON object of notebook parameters")
    nb.add_argument("--progress", action="store_true", help="show papermill's cell progress bar")
    cl = sub.add_parser("claims", help="gather claims.json files into results/claims.md and the README")
    cl.add_argument("out")
    cl.add_argument("claim_files", nargs="*")
    cl.add_argument("--readme", default=None)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)

    if args.command == "notebook":
        try:
            parameters = json.loads(args.params)
        except json.JSONDecodeError as err:
            parser.error(f"--params is not valid JSON: {err}")
        logging.getLogger("papermill").setLevel(logging.WARNING)
        started = time.perf_counter()
        run_notebook(args.source, args.target, parameters, progress=args.progress)
        print(f"{args.target}: {job_usage(started)}", flush=True)
    else:
        ledgers = claims.gather(args.claim_files, args.out)
        if args.readme:
            claims.update_readme(args.readme, ledgers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
