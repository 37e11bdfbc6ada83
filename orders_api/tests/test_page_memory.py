"""The memory a page of large orders costs a real API process (the API server, as deployed).

500 orders of 880 KB each, with their worker results in Redis: a page of 500 of them used
to load about 440 MB from PostgreSQL and as much from Redis into one API thread. The
page is bounded by API_PAGE_MAX_BYTES now; the test measures the worker process's peak
resident memory (VmHWM) while it serves the page, and prints the figure.
"""

from __future__ import annotations

import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from django_redis import get_redis_connection

from orderstream.messages import OrderResult
from testkit import processes

pytestmark = [pytest.mark.processes, pytest.mark.broker, pytest.mark.db]

ORDERS = 500
PAYLOAD_BYTES = 880_000
PEAK_GROWTH_BOUND = 100 * 1024 * 1024  # bytes the page may add to the worker's peak
REQUEST_TIMEOUT = 120  # seconds: the unbounded page took tens of seconds


def peak_rss(pid: int) -> int | None:
    """The process's peak resident memory in bytes (VmHWM); None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kilobytes = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))
    return int(kilobytes) * 1024


class PeakWatch:
    """Samples a process's peak resident memory in a thread until stopped (the last figure
    read is kept should the process die)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak = peak_rss(pid) or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, peak_rss(self.pid) or 0)

    def __enter__(self) -> PeakWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.peak, peak_rss(self.pid) or 0)


def large_orders(dbname: str, user_id: uuid.UUID) -> list[str]:
    """ORDERS orders of `user_id` with payloads of PAYLOAD_BYTES, written by PostgreSQL
    itself (no 440 MB through this process); their ids, newest first."""
    rows = processes.query(
        dbname,
        "INSERT INTO orders_api_order (order_id, user_id, amount, status, payload,"
        " created_at, updated_at, bucket, version, outcome, outcome_reason)"
        " SELECT gen_random_uuid(), %s, 0, 'new',"
        " jsonb_build_object('id', 'big-' || n, 'note', repeat('x', %s)),"
        " now() - n * interval '1 second', now() - n * interval '1 second', 0, 1, '', ''"
        " FROM generate_series(1, %s) AS n RETURNING order_id",
        [str(user_id), PAYLOAD_BYTES, ORDERS],
    )
    return [str(row[0]) for row in rows]


def results_in_redis(order_ids: list[str], user_id: uuid.UUID) -> None:
    """A worker result of each order, as large as its row, in Redis."""
    redis = get_redis_connection("default")
    note = "x" * PAYLOAD_BYTES
    for start in range(0, len(order_ids), 50):
        pipe = redis.pipeline(transaction=False)
        for n, order_id in enumerate(order_ids[start : start + 50], start=start):
            result = OrderResult(
                order_id=order_id,
                status="created",
                processed_at="2026-01-01T00:00:00Z",
                order_status="done",
                user_id=str(user_id),
                amount=0,
                payload={"id": f"big-{n}", "note": note},
                created_at="2026-01-01T00:00:00Z",
                updated_at="2026-01-01T00:00:00Z",
                bucket=0,
                version=1,
            )
            pipe.set(OrderResult.redis_key(order_id), result.to_bytes(), ex=600)
        pipe.execute()


def read_page(url: str) -> tuple[int, int, float]:
    """GET `url`, reading the body in chunks: (status, body bytes, seconds)."""
    started, size = time.monotonic(), 0
    with urllib.request.urlopen(url, timeout=REQUEST_TIMEOUT) as response:
        while chunk := response.read(1 << 20):
            size += len(chunk)
        return response.status, size, time.monotonic() - started


def test_a_page_of_500_orders_of_880_kb_stays_within_the_memory_bound(
    unique_topics, tmp_path, capsys
):
    user = uuid.uuid4()
    with (
        processes.scratch_databases("orderstream_memory") as scratch,
        processes.Deployment(scratch, unique_topics, tmp_path) as deployment,
    ):
        api = deployment.start_api(workers=1, threads=2)
        deployment.wait_until_serving()
        order_ids = large_orders(scratch["default"], user)
        results_in_redis(order_ids, user)
        try:
            (worker,) = api.worker_pids()
            status, _, _ = read_page(f"{api.base_url}/orders?user_id={uuid.uuid4()}")
            assert status == 200
            before = peak_rss(worker)
            with PeakWatch(worker) as watch:
                status, size, seconds = read_page(
                    f"{api.base_url}/orders?user_id={user}&page_size={ORDERS}"
                )
            growth = watch.peak - before
            with capsys.disabled():
                print(
                    f"\nGET /orders page_size={ORDERS} of {ORDERS} x {PAYLOAD_BYTES} B orders:"
                    f" HTTP {status}, {size / 1e6:.1f} MB in {seconds:.1f} s; API worker"
                    f" peak RSS {before / 2**20:.0f} MiB -> {watch.peak / 2**20:.0f} MiB"
                    f" (+{growth / 2**20:.0f} MiB)",
                    flush=True,
                )
        finally:
            get_redis_connection("default").delete(*map(OrderResult.redis_key, order_ids))
    assert status == 200
    assert growth < PEAK_GROWTH_BOUND
