# decrimkit — every target bootstraps .venv from the project's own files (pyproject.toml + constraints.txt).
# Studies are file targets hung off their results.json, so `make paper` reruns only what changed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DK     := $(VENV)/bin/decrimkit
SEED   ?= 0
STAMP  := $(VENV)/.installed-stamp
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0
# one BLAS thread per process: the tests run in two xdist workers on two cores, and oversubscribed
# OpenBLAS made small least-squares fits 60x slower under load
TEST_ENV := DECRIMKIT_PROGRESS=0 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

CORE        := $(shell find src -name '*.py' 2>/dev/null)
ESTIMATORS  := $(shell find estimators -name '*.py' 2>/dev/null)
DATA        := $(shell find src/decrimkit/datasets/data -type f 2>/dev/null)

.DEFAULT_GOAL := help

# The studies come from their registry (studies/registry.py, standard library only): it writes STUDY_NAMES,
# PAPER_STUDIES and each study's extra prerequisites (its package, files of other studies it imports, the
# outputs it pools), one rule per `;`. Adding a study to the registry adds its study-NAME and report-NAME.
define NEWLINE


endef
$(eval $(subst ;,$(NEWLINE),$(shell $(PYTHON) studies/registry.py make)))
ifeq ($(STUDY_NAMES),)
$(error could not read the study registry: $(PYTHON) studies/registry.py make)
endif
STUDY_TARGETS  := $(addprefix study-,$(STUDY_NAMES))
REPORT_TARGETS := $(addprefix report-,$(STUDY_NAMES))

.PHONY: help setup browser check-html test test-fast lint studies $(STUDY_TARGETS) \
        paper $(REPORT_TARGETS) report-plan bench bench-quick validate validate-quick clean

help:  ## list targets
	@{ grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'; $(PYTHON) studies/registry.py help; } | sort

$(STAMP): pyproject.toml setup.py constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24" 
	$(PY) -m pip install --quiet -c constraints.txt -e ".[studies,test,paper,dev]"
	@touch $(STAMP)

setup: $(STAMP) browser  ## create .venv and install decrimkit with pinned dependencies (and Chromium)

# Chromium for the browser check of report.html (tests/test_report_html.py): Debian's package, installed
# when missing and apt-get can run as root; otherwise the command to run is printed.
browser:  ## install Chromium (headless browser check of report.html) if it is missing
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  command -v google-chrome >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "make browser: install Chromium (e.g. sudo apt-get install chromium) for tests/test_report_html.py" >&2; fi; }

check-html: $(STAMP) browser  ## report.html in headless Chromium at 1280 and 400 px (screenshots in outputs/html-check/)
	DECRIMKIT_SCREENSHOTS=outputs/html-check $(TEST_ENV) $(PY) -m pytest -q -p no:xdist tests/test_report_html.py
	@echo "screenshots: outputs/html-check/report-1280.png, outputs/html-check/report-400.png"

test: $(STAMP) browser  ## run the test suite (what CI runs; installs Chromium for the report.html browser check if missing)
	$(TEST_ENV) $(PY) -m pytest -n 2 --dist loadgroup -q tests

test-fast: $(STAMP) browser  ## run the test suite without the slow marker
	$(TEST_ENV) $(PY) -m pytest -n 2 --dist loadgroup -q -m "not slow" tests

lint: $(STAMP)  ## ruff over the three packages and the tests; fails on an import cycle
	$(VENV)/bin/ruff check src estimators studies tests bench paper tools
	$(PY) tools/check_imports.py

# ---------------------------------------------------------------- studies
# The seed the outputs were made with: rewritten only when SEED changes, so `make paper SEED=1` reruns the
# studies with the new seed and a plain `make paper` afterwards reuses them.
SEED_STAMP := outputs/.seed
$(SEED_STAMP): FORCE
	@mkdir -p outputs
	@echo $(SEED) | cmp -s - $@ || echo $(SEED) > $@
.PHONY: FORCE
FORCE:

# outputs/NAME/results.json of every registered study: the core, the modules the studies share
# (studies/*.py) and the data; its own prerequisites come from the registry (above)
outputs/%/results.json: $(STAMP) $(SEED_STAMP) $(CORE) $(ESTIMATORS) $(wildcard studies/*.py) $(DATA)
	$(DK) study $* --out outputs/$* --seed $(SEED)

$(STUDY_TARGETS): study-%: outputs/%/results.json
studies: $(STUDY_TARGETS)  ## run every study

# ---------------------------------------------------------------- paper, benchmarks, validation
RESULTS := $(foreach s,$(PAPER_STUDIES),outputs/$(s)/results.json)

paper/build/decrimkit-evaluations.pdf: $(RESULTS) $(wildcard paper/*.typ) paper/refs.bib paper/build.py
	$(PY) paper/build.py

paper: paper/build/decrimkit-evaluations.pdf  ## build the manuscript PDF from the study outputs

# A grant report is built from the outputs that one study already has (outputs/<study>/, any run of
# `decrimkit study` or `make study-<study>`); the study runs only when it has no outputs, and build.py
# refuses outputs made with another SEED. Other studies' outputs are not needed.
$(REPORT_TARGETS): report-%: $(STAMP)
	@test -f outputs/$*/results.json || $(MAKE) --no-print-directory outputs/$*/results.json
	$(PY) paper/build.py --format report --study $* --seed $(SEED)

report-plan: $(STAMP)  ## grant report of an analysis plan: make report-plan PLAN=docs/examples/plan_castle.toml
	@test -n "$(PLAN)" || { echo "usage: make report-plan PLAN=path/to/plan.toml" >&2; exit 2; }
	$(PY) paper/build.py --format report --plan $(PLAN)

bench: $(STAMP)  ## benchmarks against the peer packages (writes bench/results/)
	$(PY) bench/run.py

bench-quick: $(STAMP)  ## a < 5 minute subset of the benchmarks
	$(PY) bench/run.py --quick

validate: $(STAMP)  ## Monte Carlo coverage simulations (long)
	$(PY) validation/run.py

validate-quick: $(STAMP)  ## a < 5 minute subset of the validation simulations
	$(PY) validation/run.py --quick

clean:  ## remove build products and outputs (keeps .venv)
	rm -rf outputs paper/build build dist *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
