# Two commands do all set-up from a fresh clone: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= dev
STAMP := $(VENV)/.installed-$(EXTRAS)

SCALE ?= smoke
FIGURES ?= figures
SEEDS ?=
PAPERS ?= soundcollage,clap_curation

.PHONY: install demo test nbtest pytest papertest paper export clean-nbs readme

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# constraints.txt pins torch==2.13.0: the CPU wheel on this kind of machine, not a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	touch $@

install: $(STAMP)

demo: install
	$(BIN)/soundcollage demo --out demo_out

test: install nbtest pytest papertest

# Two notebooks run at once on a 2-core machine: one BLAS/OpenMP thread each (oversubscribed torch threads
# made the discovery notebooks 3-6x slower).
nbtest: install
	OMP_NUM_THREADS=1 $(BIN)/nbdev-test --n-workers 2 --timing

pytest: install
	$(BIN)/python -m pytest -q

# Every paper notebook at smoke scale, into build/ (the committed figures/ are not touched).
papertest: install
	rm -rf build/paper-smoke
	$(BIN)/soundcollage paper --scale smoke --figures build/paper-smoke --runs build/paper-smoke/runs

# Regenerate the papers' tables and figures: make paper SCALE=smoke|mini|full [FIGURES=figures] [SEEDS=0,1,2]
# [PAPERS=soundcollage|clap_curation] (without SEEDS each notebook runs its own default, seed 0)
paper: install
	$(BIN)/soundcollage paper --scale $(SCALE) --papers $(PAPERS) --figures $(FIGURES) --runs runs $(if $(SEEDS),--seeds $(SEEDS))

export: install
	$(BIN)/nbdev-export
	$(BIN)/nbdev-clean

readme: install
	$(BIN)/jupyter nbconvert --to markdown nbs/index.ipynb --output-dir . --output README
	sed -i '/^#| export$$/d' README.md   # the package docstring's cell directive (nbdev reads it; readers need not)

