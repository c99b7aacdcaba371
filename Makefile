# `make app` sets up a venv and serves the page; `make test` sets up and runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# tiktoken's and numba's caches live in the checkout, shared by the app, the tests and the bench
export EMBEDVIZ_CACHE_DIR ?= $(CURDIR)/.cache

.PHONY: app test setup test-setup bench clean

$(VENV)/installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# fills umap's numba cache once, so the first projection on a fresh server takes about a second
setup: $(VENV)/installed
	$(PY) -m embedviz.projection --warm-up

app: setup
	$(VENV)/bin/streamlit run app.py --server.port 8501

# Debian's Chromium and fonts for emoji/CJK: Playwright's own browser download does not work here
test-setup: setup
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium fonts-noto-color-emoji fonts-noto-cjk; }

test: test-setup
	$(PY) -m pytest -q

bench: setup
	$(PY) -m embedviz.bench

clean:
	rm -rf $(VENV) .cache .pytest_cache artifacts
