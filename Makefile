# The two commands: `make run` (the local stack) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The embedded broker: tansu (in memory, no Java) or kafka (Apache Kafka, needs Java 17 and Maven).
# KAFKA_NODES=3 (with BROKER=kafka): three Apache Kafka nodes instead of one (devstack/brokers.py).
BROKER ?= tansu
export BROKER

.PHONY: run test test-fast lint venv prepare clean compose-lint bench bench-api bench-worker bench-capacity bench-scale-out mutation

venv: $(VENV)/.installed

$(VENV)/.installed: requirements/base.txt requirements/local.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/local.txt
	touch $@

run: venv
	$(PY) scripts/local_stack.py run

# The static checks, then the suite under coverage (.coveragerc), the processes it starts
# included; a whole run fails below the floors in scripts/coverage_floor.py.
test: lint
	rm -f .coverage .coverage.*
	COVERAGE_FILE=$(CURDIR)/.coverage $(PY) -m coverage run scripts/local_stack.py test $(PYTEST_ARGS)
	COVERAGE_FILE=$(CURDIR)/.coverage $(PY) scripts/coverage_floor.py $(if $(PYTEST_ARGS),,--floor)

prepare: venv
	$(PY) scripts/local_stack.py prepare

# The edit-test loop: the unit layer only (no database, Redis or broker; see conftest.py).
test-fast: venv
	$(PY) -m pytest -m unit -q -p no:cacheprovider $(PYTEST_ARGS)

# Static checks: ruff (lint and format), the imports between the packages (neither app
# imports the other, the core neither: scripts/check_imports.py) and the compose stack.
lint: venv compose-lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) scripts/check_imports.py

clean:
	rm -rf $(VENV) .local staticfiles .pytest_cache

# The compose stack without a Docker engine: compose-spec schema, hadolint, shellcheck, and
# its monitoring: promtool on the Prometheus config and the dashboard's PromQL, the metric
# names (scripts/check_monitoring.py; without promtool those steps are skipped, saying so).
compose-lint: venv
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec compose/docker-compose.yml compose/docker-compose.cluster.yml
	$(VENV)/bin/hadolint --failure-threshold info compose/Dockerfile
	$(VENV)/bin/shellcheck compose/start-api.sh compose/start-relay.sh compose/start-worker.sh
	$(PY) scripts/check_monitoring.py

# Benchmarks; BENCH_ARGS="--help" lists their options (see README "Benchmark").
# bench: the whole benchmark on a stack of its own (databases *_bench, a throwaway broker,
# the API server, relay, worker and the bare-DRF baseline), results in bench-results/$(BROKER)/.
# bench-api measures the running `make run` stack; bench-worker brings its own broker,
# database and topics (both `python -m bench api|worker` with the local values, see
# bench/cli.py). The load generator is wrk (apt-get install -y wrk).
bench: venv
	$(PY) scripts/local_stack.py bench $(BENCH_ARGS)

bench-api: venv
	$(PY) scripts/local_stack.py bench api $(BENCH_ARGS)

bench-worker: venv
	$(PY) scripts/local_stack.py bench worker $(BENCH_ARGS)

# bench-capacity: the highest open-loop rate of non-waiting creates the running `make run`
# stack sustains for 60 s a probe, against the baseline's (bench/capacity.py).
bench-capacity: venv
	$(PY) scripts/local_stack.py bench capacity $(BENCH_ARGS)

# bench-scale-out: on a stack of its own (BROKER=kafka KAFKA_NODES=3 for the cluster), 2 APIs
# and 2 relays, workers 1, 3 then 6: each count's join times and sustained creates
# (bench/scale_out.py).
bench-scale-out: venv
	$(PY) scripts/local_stack.py bench scale-out $(BENCH_ARGS)

# Mutation testing (mutmut) of the pure modules, the idempotency keys and the Redis result;
# not part of `make test`. MUTATION_ARGS="--keep" reuses mutants/ (see README "Testing").
mutation: venv
	$(PY) scripts/local_stack.py mutation $(MUTATION_ARGS)
