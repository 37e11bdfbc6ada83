"""The scale-out bench's pure parts (bench/scale_out.py): a worker's partitions read from
its metrics, the whole-pipeline verdict of a probe, and the table (the run itself needs
a live stack: `make bench-scale-out`)."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

import pytest

from bench.capacity import probe_verdict
from bench.cli import parse_args
from bench.scale_out import format_scale_out, partitions_held
from bench.tests.local_server import serving
from devstack.ports import free_port

pytestmark = pytest.mark.unit

METRICS = b"""# HELP orderstream_worker_partitions_assigned Partitions this worker holds
# TYPE orderstream_worker_partitions_assigned gauge
orderstream_worker_partitions_assigned 3.0
# TYPE orderstream_worker_seconds_since_last_commit gauge
orderstream_worker_seconds_since_last_commit 0.4
"""


class _Metrics(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(METRICS)))
        self.end_headers()
        self.wfile.write(METRICS)

    def log_message(self, *args):
        pass


@pytest.fixture
def metrics_url():
    with serving(_Metrics) as url:
        yield f"{url}/metrics"


def test_a_workers_partitions_come_from_its_gauge(metrics_url):
    assert partitions_held(metrics_url) == 3


def test_a_worker_whose_metrics_do_not_answer_holds_nothing_known():
    assert partitions_held(f"http://127.0.0.1:{free_port()}/metrics") is None


def _probe(unapplied: int) -> dict:
    return {
        "rate_asked": 200.0,
        "rate_sent": 199.0,
        "statuses": {"202": 6000},
        "latency_ms": {"p99": 40.0},
        "outbox_oldest_s": 0.2,
        "unapplied_at_end": unapplied,
    }


def test_a_pipeline_probe_fails_when_the_workers_fall_behind():
    assert probe_verdict(_probe(200), max_unapplied_s=1.0) == []
    assert probe_verdict(_probe(201), max_unapplied_s=1.0) == [
        "201 events unapplied at the end > 1 s of the rate"
    ]
    assert probe_verdict(_probe(5000)) == []  # bench-capacity does not judge the workers


def test_the_table_gives_each_count_against_the_first():
    joins = {"partitions_s": {"worker2": 4.5, "worker3": None}, "balanced_s": 7.25}
    report = {
        "apis": 2,
        "relays": 2,
        "partitions": 6,
        "probe_seconds": 30.0,
        "levels": [
            {
                "workers": 1,
                "best": 100.0,
                "joins": {"partitions_s": {"worker1": 2.0}, "balanced_s": 2.0},
            },
            {"workers": 3, "best": 150.0, "joins": joins},
        ],
    }
    rows = format_scale_out(report).splitlines()
    assert rows[-2].split() == ["1", "100.0", "1.00", "2", "2.0"]
    assert rows[-1].split() == ["3", "150.0", "1.50", "4.5,", "-", "7.25"]


def test_the_scale_out_options_default_to_two_apis_two_relays_and_1_3_6_workers():
    options = parse_args(["scale-out"])
    assert (options.apis, options.relays, options.workers) == (2, 2, "1,3,6")
    assert options.capacity_seconds == 60.0
