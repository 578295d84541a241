# Homefire developer entry points. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck imports unit bench fuzz screenshots clean

# llama-cpp-python comes from the installers' portable recipe (installers/engine.py: RPC on,
# no -march=native), built once into a cache shared with `make installers`.
$(STAMP): pyproject.toml installers/engine.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	wheel="$$($(BIN)/python -m installers.engine wheel)" && \
		$(BIN)/python -m pip install --quiet --no-deps --force-reinstall "$$wheel"
	$(BIN)/python -m pip install --quiet -e '.[starter,test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/homefire

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The architecture's layers (contracts in pyproject.toml, [tool.importlinter]).
imports: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

test: lint typecheck imports unit

# The fuzz tests with a long example budget (CI runs the same tests with the short default one).
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=long QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m fuzz --timeout 3600

bench: $(STAMP)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# PNGs of the main pages for the README (tools/screenshots.py), under Xvfb when it is installed.
screenshots: $(STAMP)
	$(if $(shell command -v xvfb-run),xvfb-run --auto-servernum --server-args="-screen 0 1280x800x24",QT_QPA_PLATFORM=offscreen) \
		$(BIN)/python -m tools.screenshots docs/screenshots

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache

# The click-to-install packages for this platform: dist/homefire_<version>_amd64.deb on Linux,
# dist/Homefire-<version>-arm64.dmg on macOS (see installers/build.py). Uses its own venv
# (build/installer-venv) and a portable llama-cpp-python build, cached in ~/.cache/homefire-installers.
.PHONY: installers
installers:
	$(PYTHON) -m installers.build all
