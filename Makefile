# netservices: `make run` starts the daemon, `make test` runs the whole suite.
# Both create .venv with the interpreter named by PYTHON when it is missing.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test test-floors unit integration install clean lint typecheck system-deps bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# An editable install (hatchling's works with twistd's plugin discovery):
# the package alone to run it, with the test extras to test it.  Re-run
# when the project metadata changes; the test install covers the other.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@ $(STAMP)

install: $(STAMP)

## run: start `twistd -n netservices` on its built-in defaults (Ctrl-C stops it).
# twistd runs in the background so that the shell can pass it Ctrl-C or a
# SIGTERM sent to make (a trapped signal ends `wait`, so wait again until
# twistd has drained and exited); twistd ends by re-raising SIGTERM
# (status 143), which is a clean stop here: make prints no error.
run: $(STAMP)
	@$(BIN)/twistd --pidfile= -n netservices $(ARGS) & pid=$$!; \
	trap 'kill -TERM $$pid 2>/dev/null' INT TERM; \
	while kill -0 $$pid 2>/dev/null; do wait $$pid 2>/dev/null; status=$$?; done; \
	case $$status in 0|130|143) exit 0;; *) exit $$status;; esac

## system-deps: the system tools that integration tests drive (curl ...).
system-deps:
	@sh tests/system-deps.sh

## test: the whole suite, under trial and under pytest, each in JOBS
## processes (most tests wait on real daemons and sockets, so two share a
## 2-core machine well).
JOBS ?= 2
test: $(TEST_STAMP) system-deps
	$(BIN)/trial -j$(JOBS) tests
	$(BIN)/python -m pytest -q -n $(JOBS) -p no:cacheprovider tests

## unit, integration: one part of the suite (tests/unit, tests/integration), under trial.
unit: $(TEST_STAMP)
	$(BIN)/trial -j$(JOBS) tests.unit

integration: $(TEST_STAMP) system-deps
	$(BIN)/trial -j$(JOBS) tests.integration

## test-floors: the suite on the declared floors (tests/floors.txt, the lowest
## release of every dependency), in its own venv, under trial only: tests/unit
## and tests/integration, without the benchmark check (FLOORS_SKIP); it leaves
## out tests/reliability and tests/lab,
## which test load rather than the Twisted API: every module is still imported
## and covered by the unit and integration tests.
FLOORS_VENV ?= .venv-floors
FLOORS_SKIP := tests/integration/test_bench.py
FLOORS_TESTS := $(subst /,.,$(patsubst %.py,%,$(filter-out $(FLOORS_SKIP),$(wildcard tests/unit/test_*.py tests/unit/*/test_*.py tests/integration/test_*.py))))

$(FLOORS_VENV)/.installed: pyproject.toml tests/floors.txt
	rm -rf $(FLOORS_VENV)
	$(PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/python -m pip install --quiet -c tests/floors.txt -e '.[test]'
	@touch $@

test-floors: $(FLOORS_VENV)/.installed system-deps
	$(FLOORS_VENV)/bin/trial -j$(JOBS) $(FLOORS_TESTS)

## bench: benchmarks against peers (about 10 minutes; not part of `make test`).
## Writes bench/results/<date>.md and .png (targets, floors, and each netservices row
## against the previous report there) and updates README's Performance section.
bench: $(TEST_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/run.py $(ARGS)

lint: $(TEST_STAMP)
	$(BIN)/python -m ruff check services tests

typecheck: $(TEST_STAMP)
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) $(FLOORS_VENV) _trial_temp build dist *.egg-info

## soak: 30 minutes of mixed load on a real daemon (SOAK_SECONDS=120 for a short one); not in CI.
.PHONY: soak
soak: $(TEST_STAMP) system-deps
	NETSERVICES_WRK_SECONDS=30 $(BIN)/trial tests.reliability.test_web.WrkTests
	$(BIN)/python -m tests.soak
