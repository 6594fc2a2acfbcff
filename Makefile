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
ROOTS ?=

.PHONY: install demo test nbtest pytest papertest rehearse rehearse-soundcollage rehearse-clap paper export clean-nbs readme

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# constraints.txt pins torch==2.13.0: the CPU wheel on this kind of machine, not a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	touch $@

install: $(STAMP)

demo: install
	$(BIN)/soundcollage demo --out demo_out

# After the notebooks (two at a time), pytest and the smoke papers run side by side, then the two papers' rehearsals:
# one thread each, output grouped per target (-O).
test: install nbtest
	OMP_NUM_THREADS=1 $(MAKE) -j2 -O pytest papertest
	$(MAKE) rehearse

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
# [PAPERS=soundcollage|clap_curation] [ROOTS="audioset=/data/audioset fsd50k=/data/FSD50K"] (full: where the data are)
# (without SEEDS each notebook runs its own default, seed 0)
paper: install
	$(BIN)/soundcollage paper --scale $(SCALE) --papers $(PAPERS) --figures $(FIGURES) --runs runs $(if $(SEEDS),--seeds $(SEEDS)) $(if $(ROOTS),--roots $(ROOTS))

# The full-scale rehearsal: every paper notebook at `full`, on tiny copies of the papers' datasets in their real on-disk
# layouts (`soundcollage fixtures full`), with the full model classes; only the counts shrink.
# SoundCollage: ResNet-18 encoder and inner nets, the recomputing second-order meta-step, ResNet-18 AS; named with the
# YAMNet .tflite of ../shared where it is there.
# CLAP curation: Cnn14 at full width + a BERT-base text tower built from its config (random weights, offline tokenizer:
# model=rehearsal), per-target DS / ADS, students replaying as in the paper; thresholds opened to -1 and capped by
# top-k / max-pairs so that every set is non-empty on fixtures.
REHEARSAL := build/rehearsal
REHEARSE_OVERRIDES ?= epochs=1 inner_steps=2 batch_size=4 heldout_size=4 as_epochs=1 as_batch_size=8 n_tasks=2 n_random=2 max_items=16
CLAP_REHEARSE_OVERRIDES ?= model=rehearsal teacher_epochs=1 student_epochs=1 student_steps=1 batch_size=4 num_workers=2 \
  du_threshold=-1 ds_threshold=-1 ads_threshold=-1 du_top_k=1 du_max_pairs=8 ads_top_k=1 ads_max_pairs=8
CLAP_ROOTS = $(foreach k,fsd50k clotho audiocaps macs audioset esc50 urbansound8k tut17,$(k)=$(REHEARSAL)/data/$(k))
YAMNET_TFLITE := $(abspath $(or $(SOUNDCOLLAGE_SHARED),../shared)/models/yamnet/yamnet.tflite)
REHEARSE_LABELER ?= $(if $(wildcard $(YAMNET_TFLITE)),yamnet-tflite:$(YAMNET_TFLITE),ground-truth)
rehearse: install
	rm -rf $(REHEARSAL)
	$(BIN)/soundcollage fixtures full --out $(REHEARSAL)/data
	OMP_NUM_THREADS=1 $(MAKE) -j2 -O rehearse-soundcollage rehearse-clap
	find $(REHEARSAL)/runs -name '*.pt' -delete    # ~0.8 GB per CLAP checkpoint at full width

# The two rehearsals write their own figure folders (each run_papers keeps an INDEX of its folder).
rehearse-soundcollage: install
	$(BIN)/soundcollage paper --scale full --papers soundcollage --device cpu --figures $(REHEARSAL)/figures/soundcollage-full --runs $(REHEARSAL)/runs \
	  --roots audioset=$(REHEARSAL)/data/audioset fsd50k=$(REHEARSAL)/data/fsd50k --override $(REHEARSE_OVERRIDES) --labeler $(REHEARSE_LABELER)

rehearse-clap: install
	$(BIN)/soundcollage paper --scale full --papers clap_curation --device cpu --figures $(REHEARSAL)/figures/clap-full --runs $(REHEARSAL)/runs \
	  --roots $(CLAP_ROOTS) --override $(CLAP_REHEARSE_OVERRIDES)

export: install
	$(BIN)/nbdev-export
	$(BIN)/nbdev-clean

readme: install
	$(BIN)/jupyter nbconvert --to markdown nbs/index.ipynb --output-dir . --output README
	sed -i '/^#| export$$/d' README.md   # the package docstring's cell directive (nbdev reads it; readers need not)

