# nslib book: `make test` and `make book` are the two commands; each sets up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NB ?= nonsmooth-convex-dynamics
PROFILE ?= book
ARGS ?=
OUT ?= runs
export NSLIB_THREADS ?= 1

BOOK_WORKERS ?= 2
TEST_WORKERS ?= 2

.PHONY: setup test test-fast book browser publish-config run lint clean atlas device-check

# (Re)install when the venv is missing or pyproject/constraints changed.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev,dist]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

setup: $(STAMP)

# Both cores (pytest-xdist); each notebook's quick run happens once per test run and is shared by the tests.
test: setup
	$(PY) -m pytest -n $(TEST_WORKERS)

# The inner loop: everything but notebook executions (under 90 s).
test-fast: setup
	$(PY) -m pytest -n $(TEST_WORKERS) -m "not notebook and not browser"

# The jupyter cache re-executes a notebook when its code cells change, but cannot see nslib: drop it
# whenever nslib's sources change, so the book never shows results of older code.
NSLIB_SOURCES := $(wildcard nslib/*.py nslib/*/*.py)
_build/.nslib-sources: $(NSLIB_SOURCES) pyproject.toml constraints.txt
	rm -rf _build/.jupyter_cache
	mkdir -p _build && touch $@

# The cache cannot see which CPU kernels torch was told to use either (ATEN_CPU_CAPABILITY, see book/rerun.md): a
# build under other kernels than the last one executes every page again, so that no page shows another machine's run.
KERNELS_STAMP := _build/.kernels-$(if $(ATEN_CPU_CAPABILITY),$(ATEN_CPU_CAPABILITY),unforced)
$(KERNELS_STAMP):
	rm -rf _build/.jupyter_cache _build/.kernels-*
	mkdir -p _build && touch $@

# Fresh doctrees every time (an incremental rebuild can pass stale); executed notebooks come from the
# jupyter cache in _build/.jupyter_cache, re-executed when their code cells or nslib change. The pages are executed
# BOOK_WORKERS at a time into that cache first (each page runs on one thread); Sphinx then only renders, still with
# warnings as errors and raise_on_error.
book: setup _build/.nslib-sources $(KERNELS_STAMP)
	rm -rf _build/html _build/.doctrees
	start=$$(date +%s); $(PY) -m nslib book-execute --workers $(BOOK_WORKERS) && \
	  $(VENV)/bin/jupyter-book build . -W -n --keep-going $(if $(BOOK_CONFIG),--config $(BOOK_CONFIG)) && \
	  $(PY) -m nslib book-times --since $$start

# The verdict atlas (nslib/atlas.py): every notebook's declared seeds and variations on the book profile, only the
# points whose code changed; tables and manifest under atlas/ (commit them). Prints its cost; on a cluster, run
# `python -m nslib atlas --scheduler tcp://HOST:8786`.
ATLAS_WORKERS ?= 2
atlas: setup
	$(PY) -m nslib atlas --workers $(ATLAS_WORKERS)
	$(PY) -m nslib atlas --status

# What only a GPU can tell (nslib/devicecheck.py), into evidence/cuda-<gpu>-<date>/ (run it first whenever a GPU is at
# hand); on a machine without one, the same at each CPU kernel set it runs, into evidence/cpu-<kernels>-<date>/.
device-check: setup
	$(PY) -m nslib device-check --out evidence --kernels all

# The built book in headless Chromium: images, local MathJax, search, no remote request; screenshots in _build/screenshots.
browser: setup
	$(PY) -m pytest -m browser tests/test_browser.py

# With REPO_URL set (e.g. https://github.com/OWNER/REPO), write _build/_config.publish.yml: the book's config plus the
# repository, Binder/Colab launch and download buttons. Without it, no button points anywhere (no placeholder URL).
publish-config: setup
	$(PY) -m nslib publish-config "$(REPO_URL)" --out _build/_config.publish.yml

run: setup
	$(PY) -m nslib run $(NB) --profile $(PROFILE) --out $(OUT) $(ARGS)

lint: setup
	$(VENV)/bin/ruff check nslib tests benchmarks

clean:
	rm -rf _build _results runs .pytest_cache
