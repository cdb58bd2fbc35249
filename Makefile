PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-slow lint bench demo figures clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

lint: install
	$(BIN)/ruff check pdekit tests benchmarks

test: install lint
	JAX_ENABLE_X64=0 $(BIN)/python -m pytest -q -m "not slow" -n 2 tests

test-slow: install
	$(BIN)/python -m pytest -q -m slow tests

demo: install
	bash experiments/demo/run.sh

figures: install
	$(BIN)/python experiments/solver_validation/make_figures.py --out docs/figures/solvers

bench: install
	$(BIN)/python benchmarks/solvers.py --small --out benchmarks/results/solvers_small.json
	$(BIN)/python benchmarks/generate.py --small --json benchmarks/results/generate_small.json
	$(BIN)/python benchmarks/rollout.py --small --out benchmarks/results/rollout_small.json
	$(BIN)/python benchmarks/training.py --small --out benchmarks/results/training_small.json
	$(BIN)/python benchmarks/models.py --small --out benchmarks/results/models_small.json
	$(BIN)/python benchmarks/unet_layout.py --small --out benchmarks/results/unet_layout_small.json

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
