# `make app` sets up a venv and serves the page; `make test` runs the fast tier (unit + AppTest);
# `make test-browser` the Chromium tier; `make bench` the benchmark. Each sets up what it needs.
PYTHON ?= python3
PORT ?= 8501
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# tiktoken's and numba's caches live in the checkout, shared by the app, the tests and the bench
export EMBEDVIZ_CACHE_DIR ?= $(CURDIR)/.cache
# what the Chromium tier needs from Debian: the browser, and fonts so emoji and CJK are not boxes
BROWSER_PACKAGES := chromium fonts-noto-color-emoji fonts-noto-cjk

.PHONY: app test test-browser browser-setup setup check bench bench-quick clean

check:
	@$(PYTHON) scripts/check_setup.py

$(VENV)/installed: requirements.txt requirements-dev.txt | check
	@echo "==> Creating $(VENV) and installing the requirements (first time: about 3 minutes, mostly torch)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check --progress-bar on -r requirements-dev.txt \
	  2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
	@$(PY) -c "import torch, streamlit, umap, tiktoken" || { echo "pip did not install everything: see above"; exit 1; }
	touch $@

# compiles umap's numba code once into .cache/, so the first projection on a fresh server takes ~1 s
setup: $(VENV)/installed
	@echo "==> Compiling UMAP's numba code into .cache/ (first time: 15 s to 2 minutes; later: instant)"
	$(PY) -m embedviz.projection --warm-up

app: check
	@$(PYTHON) scripts/check_setup.py --port $(PORT)
	@$(MAKE) --no-print-directory setup
	@echo "==> Serving the page at http://localhost:$(PORT)  (Ctrl+C stops it)"
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

# two workers: the AppTest files are CPU-bound and the machine has two cores
test: setup
	$(PY) -m pytest -q -n 2 --dist loadgroup --durations=10 --ignore=tests/browser

browser-setup: setup
	@missing=$$(for p in $(BROWSER_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "==> Installing $$missing with apt-get"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; fi

test-browser: browser-setup
	$(PY) -m pytest -q tests/browser

bench: browser-setup
	$(PY) -m benchmarks

bench-quick: browser-setup
	$(PY) -m benchmarks --quick

clean:
	rm -rf $(VENV) .cache .pytest_cache artifacts
