"""snn-compendium pipeline: `snakemake all` regenerates every figure, table and claim.

Each paper notebook notebooks/papers/<key>.ipynb runs through papermill with the run's
profile, data mode, device and seeds (config/config.yaml, checked against
config/schema.yaml). Its figures and tables, declared under `outputs:` in
config/<key>.yaml, are the rule's outputs, so deleting one reruns exactly that work.
The tutorials are executed too. `results/claims.md` and the README's results table
gather every work's claims.json.

    snakemake all                                   # default profile, embedded data
    snakemake all --config profile=smoke            # seconds per notebook (CI)
    snakemake --report report.html                  # HTML report: every figure + caption
    snakemake verify_data                           # check the original data sets under data/
    snakemake benchmarks                            # speed benchmarks (not part of `all`; quiet machine)
    snakemake all --workflow-profile profiles/slurm # on a SLURM cluster
"""

import json
import sys
from pathlib import Path

from snnlib.config import ConfigError, load_work_outputs, run_subdir, validate_run_config
from snnlib.data.datasets import datasets_for
from snnlib.pipeline import check_device, missing_real_data, write_captions


configfile: "config/config.yaml"


try:
    validate_run_config(config, "config/schema.yaml")
    check_device(config["device"])
except ConfigError as err:
    sys.exit(f"snn-compendium: {err}")

PYTHON = sys.executable
CAPTIONS = ".snakemake/captions"
WORKS = sorted(p.stem for p in Path("notebooks/papers").glob("*.ipynb"))
TUTORIALS = sorted(p.stem for p in Path("notebooks/tutorials").glob("*.ipynb"))
BENCHMARKS = sorted(p.stem for p in Path("benchmarks").glob("[!_]*.py"))  # _timing.py is shared code
RUN_PARAMS = json.dumps({k: config[k] for k in ("profile", "data", "device", "seeds")})
# The default profile on embedded data writes results/ and figures/ (and the README table);
# every other profile and data mode writes under runs/<profile>-<data>/ (snnlib.config.run_subdir).
RUN = run_subdir(config["profile"], config["data"])
RUN_LABEL = f"{config['profile']} profile, {config['data']} data"


def out(path):
    """``path`` inside this run's folder."""
    return path if RUN == "." else f"{RUN}/{path}"


for key in WORKS:
    if not Path(f"config/{key}.yaml").is_file():
        sys.exit(f"snn-compendium: notebooks/papers/{key}.ipynb has no config/{key}.yaml; add one (see README)")
write_captions([f"config/{key}.yaml" for key in WORKS], CAPTIONS)

if config["data"] == "real":  # every work's original data, checked (without MD5s) before any job starts
    problems = missing_real_data(WORKS)
    if problems:
        sys.exit("snn-compendium: data=real, but these original data sets are missing or incomplete:\n"
                 + "\n".join(problems) + "\nPut them under data/ (see data/README.md; `make verify` checks them).")

report: "report/workflow.rst"


def in_report(path, key, name):
    """Flag `path` for `snakemake --report` with its declared caption."""
    return report(path, caption=f"{CAPTIONS}/{key}/{name}.rst", category=key, subcategory=RUN_LABEL)


def declared(key):
    """The figures (png + pdf), tables (csv) and NIR models that work `key` declares."""
    outputs = load_work_outputs(key)
    figures = [in_report(out(f"figures/{key}/{name}.png"), key, name) for name in outputs.figures]
    figures += [out(f"figures/{key}/{name}.pdf") for name in outputs.figures]
    tables = [in_report(out(f"results/{key}/{name}.csv"), key, name) for name in outputs.tables]
    tables += [out(f"results/{key}/{name}.nir") for name in outputs.models]  # trained networks in NIR
    return figures, tables


def data_check(key):
    """With `data: real`, a work runs only after its original data sets pass verification."""
    if config["data"] != "real" or not datasets_for(key):
        return []
    return f"results/data/{key}.verified"


DECLARED = {key: declared(key) for key in WORKS}


rule all:
    input:
        out("results/claims.md"),
        expand("results/tutorials/{name}.ipynb", name=TUTORIALS),
        [path for figures, tables in DECLARED.values() for path in figures + tables],


for key, (figures, tables) in DECLARED.items():

    rule:
        name:
            f"paper_{key}"
        input:
            notebook=f"notebooks/papers/{key}.ipynb",
            config=f"config/{key}.yaml",
            data=data_check(key),
        output:
            notebook=out(f"results/{key}/{key}.ipynb"),
            claims=out(f"results/{key}/claims.json"),
            figures=figures,
            tables=tables,
        params:
            run=RUN_PARAMS,
        log:
            out(f"logs/{key}.log"),
        threads: 2  # run_grid's worker processes (one torch thread each); --cores 2 runs one work at a time
        shell:
            "SNNLIB_WORKERS={threads} SNNLIB_RUN_DIR={RUN:q} {PYTHON:q} -m snnlib.pipeline notebook {input.notebook:q} {output.notebook:q} "
            "--params {params.run:q} > {log:q} 2>&1"


rule tutorial:
    input:
        "notebooks/tutorials/{name}.ipynb",
    output:
        "results/tutorials/{name}.ipynb",
    log:
        "logs/tutorials/{name}.log",
    shell:
        "{PYTHON:q} -m snnlib.pipeline notebook {input:q} {output:q} > {log:q} 2>&1"


rule claims:
    """The ledger of every work's claims; only the default run on embedded data updates the README table."""
    input:
        [out(f"results/{key}/claims.json") for key in WORKS],
    output:
        report(out("results/claims.md"), category="claims", subcategory=RUN_LABEL,
               caption="report/claims.rst"),
    params:
        readme="--readme README.md" if RUN == "." else "",
    shell:
        "{PYTHON:q} -m snnlib.pipeline claims {output:q} {input:q} {params.readme}"


rule verify_work_data:
    """Presence, counts and MD5s of the data sets one work uses (data: real)."""
    output:
        touch("results/data/{key}.verified"),
    params:
        names=lambda wildcards: " ".join(datasets_for(wildcards.key)),
    shell:
        "{PYTHON:q} -m snnlib.data verify {params.names}"


rule verify_data:
    """`snakemake verify_data`: report on every original data set under data/; fails if any is missing."""
    shell:
        "{PYTHON:q} -m snnlib.data verify"


rule benchmarks:
    """`snakemake benchmarks`: every benchmarks/<name>.py, one at a time (timings need a quiet machine)."""
    input:
        expand("results/benchmarks/{name}.csv", name=BENCHMARKS),


rule benchmark:
    input:
        "benchmarks/{name}.py",
    output:
        csv="results/benchmarks/{name}.csv",
        figure="figures/benchmarks/{name}.png",
    log:
        "logs/benchmarks/{name}.log",
    threads: workflow.cores  # one benchmark at a time, with the whole machine
    params:
        figure=lambda wildcards: f"figures/benchmarks/{wildcards.name}",  # the script adds .png and .pdf
    shell:
        "{PYTHON:q} {input:q} --csv {output.csv:q} --figure {params.figure:q} > {log:q} 2>&1"
