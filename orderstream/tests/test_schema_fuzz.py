"""The live API against its own OpenAPI schema, fuzzed by Schemathesis.

pytest-django's live server serves the real API on the test databases, Redis and the
session's broker, with a worker consuming in a thread (so a waiting POST gets its ACK).
Schemathesis's CLI (`st run`, in a subprocess) loads `/api/schema/` from it and runs every
phase (the schema's examples, coverage, fuzzing with valid and invalid data, and the
stateful phase, which chains operations through the links it infers, e.g. the `order_id`
of a POST /orders answer into GET /orders/{order_id}) with every check, up to
MAX_EXAMPLES cases per operation. The test fails on any failure it reports: a 5xx, an
answer its schema does not describe (status code, content type, headers, body), invalid
input accepted or valid input refused. Its JSON report is kept in the test's tmp_path.

Select it with `-m fuzz`, or leave it out with `-m "not fuzz"`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orders_api.ack_wait import process_listener

ROOT = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = 200
# The run takes about 2 minutes on a 2-core machine; the bound stops a run that stalls.
TIME_BOUND_SECONDS = 600
# One request at a time: the live server and the worker share this process.
WORKERS = 1


@pytest.fixture
def api_threads():
    """Stop the ACK listener the live server started, after the test."""
    yield
    process_listener.shutdown()


# Answers the API documents for requests its schema allows, which a fuzzer cannot avoid:
# POST /orders answers 422 for an Idempotency-Key reused with another body (the fuzzer
# repeats short keys) and for an order the worker rejects; Schemathesis's default list of
# statuses for valid data has 401, 403, 404 and 409 for such cases, not 422.
CONFIG = """
[[operations]]
include-method = "POST"
include-path = "/orders"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx",
]
"""
HOOKS = "testkit.schemathesis_hooks"


def schemathesis_run(schema_url: str, tmp_path) -> subprocess.CompletedProcess:
    """`st run` with every phase and check; its output, and its JSON report in tmp_path."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(config)),
        *("run", schema_url),
        *("--checks", "all"),
        *("--phases", "examples,coverage,fuzzing,stateful"),
        *("--max-examples", str(MAX_EXAMPLES)),
        *("--workers", str(WORKERS)),
        *("--request-timeout", "30"),
        *("--generation-database", "none"),
        # No NUL characters: the API refuses them in any payload string (PostgreSQL cannot
        # store them), which no schema can say of a free-form object; test_views covers it.
        *("--generation-allow-x00", "false"),
        *("--report", "json", "--report-json-path", str(tmp_path / "schemathesis.json")),
        "--no-color",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": HOOKS, "PYTHONPATH": str(ROOT)}
    # In tmp_path: Schemathesis keeps its crash cache (.schemathesis/) in the working folder.
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=TIME_BOUND_SECONDS,
        check=False,
        env=env,
        cwd=tmp_path,
    )


@pytest.mark.fuzz
@pytest.mark.broker
@pytest.mark.django_db(transaction=True, databases=["default", "worker"])
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    live_server, unique_topics, running_relay, running_worker, api_threads, tmp_path
):
    report = tmp_path / "schemathesis.json"
    started = time.monotonic()
    result = schemathesis_run(f"{live_server.url}/api/schema/", tmp_path)
    elapsed = time.monotonic() - started
    print(result.stdout, result.stderr, sep="\n")
    print(f"schemathesis ran {elapsed:.0f} s; JSON report: {report}")
    assert result.returncode == 0, f"schemathesis found failures (exit {result.returncode})"
    run = json.loads(report.read_text())
    assert run["test_cases"]["unique_failures"] == 0 and not run["errors"], run["failures"]
    # Every phase ran, the stateful one too (it needs links, inferred from the schema).
    assert {name: phase["status"] for name, phase in run["phases"].items()} == dict.fromkeys(
        ("examples", "coverage", "fuzzing", "stateful"), "success"
    )
