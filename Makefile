# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian's Chromium, which Playwright drives in the browser tests, and Graphviz's dot, which draws
# `inpaintkit models NAME --diagram`; installed by `make test` if missing
CHROMIUM := /usr/bin/chromium
DOT := /usr/bin/dot
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test install clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,onnx,app]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/inpaintkit demo --out demo-output --overwrite

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null

$(DOT):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz > /dev/null

test: $(STAMP) $(CHROMIUM) $(DOT)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n auto --dist loadgroup

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache
