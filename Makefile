# Every target bootstraps .venv itself; a second run reinstalls nothing unless
# pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Extra arguments for JupyterLab, e.g. `make lab LAB_ARGS="--port=8890"`.
LAB_ARGS ?=
# JupyterLab refuses to run as root unless told; say so plainly rather than fail.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: lab test check notebooks bench fuzz clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

lab: $(STAMP)
	@$(if $(ROOT_FLAG),echo "Running as root: starting JupyterLab with --allow-root.")
	$(BIN)/jupyter lab --no-browser --notebook-dir=notebooks $(ROOT_FLAG) $(LAB_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadscope tests solutions --nbval-lax

check: $(STAMP)
	$(BIN)/labapp notebooks --check
	$(BIN)/labapp strip --check solutions notebooks
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

notebooks: $(STAMP)
	$(BIN)/labapp strip solutions
	$(BIN)/labapp notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

# The fuzz tests of `make test`, with new random examples, 500 per route (about 6½ minutes on 2 cores).
fuzz: $(STAMP)
	LABAPP_FUZZ_EXAMPLES=500 LABAPP_FUZZ_RANDOM=1 $(BIN)/python -m pytest -n auto tests/test_fuzz.py -q

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
