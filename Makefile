# Neural Network Visualizer: every set-up step is a target; `make serve` and
# `make test` do all of it on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
# Processes the test suite runs on (pytest-xdist; TEST_WORKERS=0 runs it in this one)
TEST_WORKERS ?= 2
# How the committed models were trained (`make build` reproduces them; EXPORT_ARGS= trains on MNIST alone)
EXPORT_ARGS ?= --augment
EXPORT    := $(PY) export_weights.py $(EXPORT_ARGS)

.PHONY: help venv build models site serve test bench bench-train dist screenshot clean distclean

help:
	@echo "make serve   build the site (runtime vendored) and serve it on http://127.0.0.1:$(PORT)"
	@echo "make test    set everything up and run the whole test suite"
	@echo "make build   retrain the four shipped models into site/models and site/data, then make site (needs TensorFlow)"
	@echo "make models  retrain and export the four shipped models only"
	@echo "make site    assemble site/ (vendored runtime, app modules, pre-rendered first view)"
	@echo "make bench   run the benchmark (prints a table, writes bench-results/)"
	@echo "make bench-train   training speed in the browser's Pyodide (under Node) and CPython, and 3-epoch accuracy"
	@echo "make dist    write the offline USB-stick bundle into dist/"

PIP := $(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock.txt

# One venv, filled in layers: the site needs numpy only, and a .pth file that puts this tree on
# the venv's path (the tools import pyscript_app and export_weights from it); tests add pytest
# and Playwright; training (and the Keras parity tests) add TensorFlow. A change to a recipe
# here fills the layers again (pip skips what is there).
$(VENV)/.base: requirements.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.txt
	$(PY) -c 'import pathlib, sys, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "nn-visualizer.pth").write_text(sys.argv[1] + "\n")' '$(CURDIR)'
	touch $@

$(VENV)/.test: requirements-test.txt $(VENV)/.base
	$(PIP) -r requirements-test.txt
	touch $@

$(VENV)/.train: requirements-train.txt $(VENV)/.base
	$(PIP) -r requirements-train.txt
	touch $@

venv: $(VENV)/.base $(VENV)/.test $(VENV)/.train

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

build: models
	$(MAKE) site

# The shipped models, in the picker's order (the first is the default).
models: $(VENV)/.train
	$(EXPORT) --id seed --hidden 32,32 --activation sigmoid --title "Seed network" \
	  --description "The original small network: two layers of 32 sigmoid units."
	$(EXPORT) --id relu --hidden 128,64 --activation relu --title "ReLU network" \
	  --description "Wider layers of ReLU units (128 and 64): the most accurate of the Dense networks."
	$(EXPORT) --id deep --hidden 64,32,16 --activation tanh --title "Deep tanh network" \
	  --description "Three narrowing layers of tanh units (64, 32, 16)."
	$(EXPORT) --id cnn --conv 12,24 --kernel 3 --padding valid --hidden 64 --activation relu --epochs 12 \
	  --lr-schedule cosine --title "Convolutional network" \
	  --description "Two layers of 3x3 filters (12 and 24), each followed by 2x2 max pooling, then 64 ReLU units: the most accurate, and the best reader of redrawn digits."
	$(PY) tools/atlas_maps.py --site site

site: $(VENV)/.base node_modules/.installed
	$(PY) tools/build_site.py

serve: site
	$(PY) tools/serve.py --root site --port $(PORT)

test: site $(VENV)/.test $(VENV)/.train
	bash tools/ensure_browser.sh
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: site $(VENV)/.test
	bash tools/ensure_browser.sh
	$(PY) tools/bench.py $(BENCH_ARGS)

bench-train: site
	$(PY) tools/bench_train.py --accuracy $(BENCH_TRAIN_ARGS)

dist: site
	$(PY) tools/make_dist.py

screenshot: site $(VENV)/.test
	bash tools/ensure_browser.sh
	$(PY) tools/screenshot.py

clean:
	rm -rf site/vendor site/app site/pyscript.toml site/index.html site/sw.js dist bench-results .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) node_modules .cache
