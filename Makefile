# bendlab: `make help` lists the targets.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
# one torch thread per process unless told otherwise: predictable on a shared 2-core machine
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE ?= 1

NOTEBOOKS  := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
# `make figures` runs the notebooks that write figures/; left out, with the reason:
#   01_operators.ipynb            the explorer: no paper figure
#   07_audio_reactive_video.ipynb renders a video, not a figure (`make demo` renders the full video)
#   08_live.ipynb                 the live view: no figure
FIGURE_NBS := $(filter-out notebooks/01_operators.ipynb notebooks/07_audio_reactive_video.ipynb \
                           notebooks/08_live.ipynb,$(NOTEBOOKS))
EXEC       := notebooks/executed
MODEL_DIR  := bendlab/weights/bendlab-tiny-sd
MUSIC_DIR  := bendlab/weights/bendlab-tiny-music
MOTION_DIR := bendlab/weights/bendlab-tiny-motion

.PHONY: help install test unit slow notebooks docs lab figures demo video model music-model motion bench lint clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install:  ## create .venv, install torch 2.13.0 (CPU) first, then bendlab with its notebook and dev (tests, docs) extras; the kernel
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[notebooks,dev]"
	@# the notebooks' kernel, "Python (bendlab)": in the user's Jupyter folder, so a JupyterLab outside .venv lists it,
	@# and in .venv, which Jupyter run from .venv reads first (another checkout's --user one never stands in there)
	$(BIN)/python -m ipykernel install --user --name bendlab --display-name "Python (bendlab)" >/dev/null
	$(BIN)/python -m ipykernel install --sys-prefix --name bendlab --display-name "Python (bendlab)" >/dev/null
	@# python3 in .venv as well: tests/models/test_families.py runs papermill -k python3
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@echo "installed: $$($(BIN)/python -c 'import torch, diffusers; print("torch", torch.__version__, "diffusers", diffusers.__version__)')"

test: lint unit notebooks docs slow  ## everything: ruff, the quick tests, every notebook headless (fast mode), the docs site, the slow tests

# the quick suite runs its test files on one pytest-xdist worker per CPU (at most 4), a file's tests together (their
# module fixtures shared): 504 s against 706-773 s in one process on the 2-core machine
unit:  ## the quick pytest suite (CPU, shipped model, network blocked): all but the tests marked slow
	$(BIN)/python -m pytest -q -m "not slow" -n auto --maxprocesses 4 --dist loadfile

slow:  ## the tests marked slow: 50-step renders, papermill inside pytest, the real-browser notebooks
	$(BIN)/python -m pytest -q -m slow

# two notebooks at a time (each computes on one thread), each with its own figures folder; xargs fails if any fails.
# A cell may take 300 s at most in fast mode: ipykernel 7 has once lost a finished cell's reply, leaving papermill
# waiting forever on an idle kernel; the timeout ends that wait and the notebook is run once more
notebooks:  ## execute every notebook headless with papermill, fast mode, into notebooks/executed/
	@mkdir -p $(EXEC)
	@printf '%s\n' $(NOTEBOOKS) | xargs -P 2 -I NB sh -c '\
	  name=$$(basename NB .ipynb); echo "papermill NB (fast)"; \
	  run() { BENDLAB_FAST=1 BENDLAB_FIGURES=$(CURDIR)/$(EXEC)/figures/$$name BENDLAB_OUT=$(CURDIR)/$(EXEC)/out \
	    $(BIN)/papermill --no-progress-bar -k bendlab --execution-timeout 300 --cwd notebooks NB $(EXEC)/$$name.ipynb; }; \
	  run || { echo "papermill NB failed once: running it again"; run; } || { echo "papermill NB failed"; exit 255; }'

docs:  ## build the docs site into site/ (mkdocs --strict): docs/*.md and the notebooks `make notebooks` executed
	@test -d $(EXEC) || { echo "make docs: no $(EXEC)/: run make notebooks first (the site shows the executed notebooks)"; exit 1; }
	$(BIN)/mkdocs build --strict

lab:  ## JupyterLab on notebooks/, kernel "Python (bendlab)": the notebooks are the front door
	$(BIN)/jupyter lab notebooks/

figures:  ## run the figure notebooks at full settings (50 steps) and rewrite figures/
	@echo "not run by this target: notebooks/01_operators.ipynb (no figure), notebooks/07_audio_reactive_video.ipynb (video: make demo), notebooks/08_live.ipynb (live view)"
	@mkdir -p $(EXEC)
	@for nb in $(FIGURE_NBS); do \
	  echo "papermill $$nb (full)"; \
	  BENDLAB_FIGURES=$(CURDIR)/figures $(BIN)/papermill --no-progress-bar -k bendlab --cwd notebooks $$nb $(EXEC)/$$(basename $$nb) || exit 1; \
	done

demo:  ## the main job: the paper's video (piano, "3D mesh geometry", R1 at layer 40, RMS -> 0..2 pi) -> out/piano_mesh.mp4
	@mkdir -p out
	$(BIN)/bendlab video bendlab/data/piano.ogg --prompt "3D mesh geometry" --op rotate1 --layer 40 \
	  --feature rms --range 0 6.2832 --fps 20 --out out/piano_mesh.mp4

video: demo  ## alias of demo

model:  ## retrain the shipped model from scratch: one seeded run, about an hour on both cores here (see its model card)
	$(BIN)/python training/train.py --threads 2 --out $(MODEL_DIR)

music-model:  ## retrain the shipped music model from scratch: one seeded run, about 50 minutes on both cores here (see its model card)
	$(BIN)/python training/train_music.py --threads 2 --out $(MUSIC_DIR)

motion:  ## retrain the shipped motion adapter (AnimateDiff, for the shipped model) from scratch: two seeded stages, about 110 minutes here (see its model card)
	$(BIN)/python training/train_motion.py --threads 2 --out $(MOTION_DIR).stage1
	$(BIN)/python training/train_motion.py --threads 2 --init $(MOTION_DIR).stage1 --seed 1 --minutes 30 --lr 5e-4 --out $(MOTION_DIR)

bench:  ## benchmarks: render speed, bend overhead, branching and batching ratios
	$(BIN)/python benchmarks/bench.py

lint:  ## ruff
	$(BIN)/ruff check bendlab tests training benchmarks notebooks

clean:  ## remove build and run outputs (keeps .venv, figures/ and the model)
	rm -rf build *.egg-info .pytest_cache .ruff_cache out/ site/ $(EXEC)
