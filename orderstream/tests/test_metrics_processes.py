"""The metrics of the real processes: the API server (2 workers, multiprocess mode), `run_relay`
and `run_worker`, each scraped before and after a known load.

The API's counters are summed over its API processes (whichever answers the scrape);
the relay's and the worker's are served on their own ports (processes.py gives each a
free one). Every delta below is exact: the load is the only traffic of these processes.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

from orderstream.kafka import make_producer
from testkit import processes
from testkit.helpers import eventually
from testkit.scrape import Metrics, scrape

pytestmark = [pytest.mark.processes, pytest.mark.broker]

CREATES = 12
REQUESTS = "orderstream_http_requests_total"
DURATION = "orderstream_http_request_duration_seconds"


def create(base_url: str) -> int:
    body = {"user_id": str(uuid.uuid4()), "payload": {"id": "m-1", "amount": 2}}
    request = urllib.request.Request(
        f"{base_url}/orders",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def health(base_url: str) -> int:
    with urllib.request.urlopen(f"{base_url}/health", timeout=10) as response:
        return response.status


def per_process(metrics_dir: Path, pid: int, scratch: Path) -> Metrics:
    """The counters of one API process alone, read from its own file."""
    own = scratch / str(pid)
    own.mkdir(parents=True)
    shutil.copy(metrics_dir / f"counter_{pid}.db", own)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(own))
    return Metrics(generate_latest(registry).decode())


def stale_counter_file(metrics_dir: Path) -> None:
    """A counter file left by an earlier API server (a process long gone): 1000 creates."""
    metrics_dir.mkdir()
    stale = MmapedDict(str(metrics_dir / "counter_999999.db"))
    labels = ["view", "method", "status"], ["orders-list", "POST", "200"]
    key = mmap_key(REQUESTS.removesuffix("_total"), REQUESTS, *labels, "HTTP requests")
    stale.write_value(key, 1000.0, 0.0)
    stale.close()


def test_the_processes_count_a_known_load_exactly(unique_topics, tmp_path):
    metrics_dir = tmp_path / "prometheus"
    stale_counter_file(metrics_dir)
    with (
        processes.scratch_databases("orderstream_metrics") as scratch,
        processes.Deployment(scratch, unique_topics, tmp_path) as deployment,
    ):
        deployment.migrate_worker_database()
        api = deployment.start_api(workers=2, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
        relay = deployment.start_relay()
        worker = deployment.start_worker()
        deployment.wait_until_serving()
        deployment.wait_until_consuming()
        api_url = f"{api.base_url}/metrics"
        relay_url = f"http://127.0.0.1:{relay.metrics_port}/metrics"
        worker_url = f"http://127.0.0.1:{worker.metrics_port}/metrics"
        processes.wait_until(
            lambda: processes.http_get(worker_url), 30, "the worker's metrics", worker
        )
        before = {"api": scrape(api_url), "relay": scrape(relay_url), "worker": scrape(worker_url)}

        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda _: create(api.base_url), range(CREATES)))
        assert statuses == [200] * CREATES  # each waited for its ACK

        def counted(url: str, name: str, expected: float, **labels):
            """The scrape once `name` moved by `expected` (the worker counts a batch just
            after producing its ACKs)."""

            def moved():
                now = scrape(url)
                return now if now.value(name, **labels) >= expected else None

            return eventually(moved, timeout=20, message=f"{name} {labels} at {expected}")

        applied = "orderstream_worker_events_total"
        old = before["worker"]
        after_worker = counted(
            worker_url, applied, old.value(applied, outcome="applied") + CREATES, outcome="applied"
        )
        published = "orderstream_relay_published_total"
        after_relay = counted(relay_url, published, before["relay"].value(published) + CREATES)
        after_api = scrape(api_url)

        # The API: every POST by view, method and status, timed; every wait answered.
        def api_delta(name: str, **labels) -> float:
            return after_api.since(before["api"], name, **labels)

        create_labels = {"view": "orders-list", "method": "POST"}
        # the server emptied the directory it was given: the counts start at 0 with it.
        assert after_api.value(REQUESTS, status="200", **create_labels) == CREATES
        assert api_delta(REQUESTS, status="200", **create_labels) == CREATES
        assert api_delta(REQUESTS, **create_labels) == CREATES
        assert api_delta(f"{DURATION}_count", **create_labels) == CREATES
        assert api_delta("orderstream_ack_waits_total", outcome="answered") == CREATES
        assert api_delta("orderstream_ack_waits_total") == CREATES
        assert after_api.value("orderstream_outbox_depth") == 0
        assert after_api.value("orderstream_outbox_parked") == 0

        # The relay: each event published once, none refused.
        def relay_delta(name: str) -> float:
            return after_relay.since(before["relay"], name)

        assert relay_delta(published) == CREATES
        assert relay_delta("orderstream_relay_publish_errors_total") == 0
        assert relay_delta("orderstream_relay_passes_total") >= 1
        assert after_relay.value("orderstream_outbox_depth") == 0

        # The worker: each event applied once, in batches that add up to the load.
        def worker_delta(name: str, **labels) -> float:
            return after_worker.since(old, name, **labels)

        assert worker_delta(applied) == CREATES  # no other outcome
        assert worker_delta("orderstream_worker_batch_size_sum") == CREATES
        batches = worker_delta("orderstream_worker_batch_size_count")
        assert 1 <= batches <= CREATES
        assert worker_delta("orderstream_worker_retries_total") == 0
        partitions = unique_topics.ORDERS_EVENTS_PARTITIONS
        assert after_worker.value("orderstream_worker_partitions_assigned") == partitions
        assert after_worker.value("orderstream_worker_seconds_since_last_commit") < 20

        def drained():
            lags = scrape(worker_url).series("orderstream_worker_consumer_lag")
            return len(lags) == partitions and all(value == 0 for _, value in lags)

        eventually(drained, timeout=10, message="a lag of 0 on every partition")

        # A poison message: dead-lettered, counted as such and as nothing else.
        producer = make_producer(client_id="metrics-test-poison")
        producer.send(unique_topics.ORDERS_EVENTS_TOPIC, b"\x00not an event", key=b"poison")
        producer.flush(timeout=10)
        producer.close(timeout=5)
        dead = after_worker.value(applied, outcome="dead_lettered") + 1
        poisoned = counted(worker_url, applied, dead, outcome="dead_lettered")
        assert poisoned.value(applied) == after_worker.value(applied) + 1

        # Both API processes served (GETs until each has): /metrics shows their sum.
        sent = 0

        def both_served():
            nonlocal sent
            with ThreadPoolExecutor(8) as pool:
                assert set(pool.map(lambda _: health(api.base_url), range(40))) == {200}
            sent += 40
            pids = api.worker_pids()
            return all((metrics_dir / f"counter_{pid}.db").exists() for pid in pids) and all(
                per_process(metrics_dir, pid, tmp_path / f"split-{sent}").value(
                    REQUESTS, view="health"
                )
                for pid in pids
            )

        health_before = scrape(api_url).value(REQUESTS, view="health")
        eventually(both_served, timeout=30, interval=0, message="both processes serving")
        pids = api.worker_pids()
        assert len(pids) == 2
        split = [
            per_process(metrics_dir, pid, tmp_path / "final").value(REQUESTS, view="health")
            for pid in pids
        ]
        total = scrape(api_url).value(REQUESTS, view="health")
        assert total - health_before == sent
        assert sum(split) == total
        assert all(split)
