# Two commands work on a fresh machine: `make demo` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
DATA    ?= ../shared/data/hh-rlhf
DEMO_OUT ?= runs/demo
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1

.PHONY: demo test lint install browser clean fuzz mutation

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# torch first and pinned: the CPU wheel lies on this disk; see README for GPU installs.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# OpenRLHF's own reward client for the serving tests; --no-deps: its requirements are a GPU
	# training stack (flash-attn, deepspeed, ray) and pin an older transformers.
	$(BIN)/pip install -q --no-deps openrlhf==0.11.2
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the report's browser test; tests skip with a reason where it cannot be had.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
	    || echo "warning: could not install chromium; browser tests will skip"; \
	  else echo "warning: not root, chromium not installed; browser tests will skip"; fi; }

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

test: $(STAMP) browser
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

# The loader fuzz tests with many examples each (the test run uses few; tests/data/conftest.py).
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q tests/data/test_data_fuzz.py

# Mutation testing of the pure core (config: [tool.mutmut] in pyproject.toml) against its fast
# tests; minutes, not part of `make test`. One thread per worker: torch's OpenMP pool hangs in
# forked workers otherwise (every evaluation mutant then times out).
MUTATION_JOBS ?= 2
mutation: $(STAMP)
	rm -rf mutants
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 10 $(BIN)/mutmut run \
	  --max-children $(MUTATION_JOBS) > mutation.log 2>&1 || { tail -n 30 mutation.log; exit 1; }
	$(BIN)/mutmut results
	$(BIN)/mutmut export-cicd-stats >/dev/null
	$(BIN)/python -c 'import json; s = json.load(open("mutants/mutmut-cicd-stats.json")); \
	  k, n = s["killed"] + s["timeout"], s["total"]; \
	  print("mutation score: %d/%d killed (%.1f%%); %d survived, %d reached by no test" \
	        % (k, n, 100 * k / n, s["survived"], s["no_tests"]))'

demo: $(STAMP)
	$(BIN)/rewardlab run $(DATA)/*.jsonl.gz -o $(DEMO_OUT) --seed 0

clean:
	rm -rf $(VENV) runs mutants mutation.log
