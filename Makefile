# snn-compendium: the README's commands.
#   make reproduce   set up if needed, fetch embedded data, run `snakemake all` (default profile)
#   make test        set up if needed, run every test: unit, nbval tutorials, smoke pipeline
#   make lab         JupyterLab on the project (LAB_FLAGS for servers, see README)
# Everything installs into .venv from requirements.lock; nothing outside the repo is needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= all
LAB_FLAGS ?=
# GPU: PyPI's Linux x86_64 wheel of torch 2.13.0 is built with CUDA 12 already; for another CUDA
# build of the same release name its index, e.g. make setup TORCH_INDEX=https://download.pytorch.org/whl/cu126
TORCH_INDEX ?=

# Every pip call made here, and later ones from this shell, keep the CPU torch 2.13.0.
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export MPLBACKEND := Agg

.PHONY: setup data verify reproduce test lab report lock clean

setup: $(STAMP)

# torch first (the CPU wheel), then the exact lock without resolving (spikingjelly's
# declared torchvision/torchaudio never enter), then snnlib itself, editable.
$(STAMP): requirements.lock constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import torch, spikingjelly.activation_based.neuron, snntorch, tonic, snnlib; assert torch.__version__.startswith('2.13.0')"
	touch $@

data: setup
	$(BIN)/python -m snnlib.data fetch all

# Presence, counts and MD5s of the original data sets under data/ (for `data: real`).
verify: setup
	$(BIN)/python -m snnlib.data verify

reproduce: data
	$(BIN)/snakemake --cores $(CORES) all --config profile=default data=embedded

test: data
	$(BIN)/python -m pytest -n 2 --dist loadfile --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg

lab: setup
	$(BIN)/jupyter lab $(LAB_FLAGS)

# The report shows what the default run made: it needs `make reproduce` first.
report: setup
	@test -f results/claims.md || { echo "make report: no results yet; run 'make reproduce' first (it writes every figure and table the report shows)"; exit 1; }
	$(BIN)/snakemake --report report.html

# Rewrite the lock from the current venv (after changing a pin in pyproject.toml).
lock:
	{ echo "# Exact environment, installed with: pip install --no-deps -r requirements.lock (see Makefile)."; \
	  echo "# Regenerate with: make lock. spikingjelly is here and installs without its torchvision/torchaudio."; \
	  $(BIN)/python -m pip freeze --all --exclude-editable | sed -e 's/^torch==2.13.0+cpu$$/torch==2.13.0/'; \
	} > requirements.lock.tmp
	mv requirements.lock.tmp requirements.lock

clean:
	rm -rf .snakemake logs report.html
	find results figures -mindepth 1 -not -name README.md -exec rm -rf {} +
