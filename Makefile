# Two entry points for a fresh machine: `make demo` (the whole pipeline on real demo data) and `make test`.
# Each creates the virtual environment, installs the project, fetches the assets into the cache
# ($DOLMA_CACHE, default ~/.cache/dolma_pipeline; never committed) and runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo-output
export DOLMA_NO_PROGRESS ?= 0

.PHONY: demo test setup clean-demo

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/python -m dolma_pipeline.assets
	touch $@

setup: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/python -m dolma_pipeline.demo_data --output $(DEMO_DIR)/corpus --skip-existing
	$(BIN)/python -m dolma_pipeline.warc.sample --output $(DEMO_DIR)/web --limit 40 --bad --corrupt --skip-existing
	$(BIN)/dolma pipeline run configs/pipeline/demo.yaml --workdir $(DEMO_DIR)

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q -p no:cacheprovider --timeout 900

clean-demo:
	rm -rf $(DEMO_DIR)
