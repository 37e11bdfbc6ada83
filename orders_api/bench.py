"""The API benchmark behind `manage.py bench_api`, against a running stack on 127.0.0.1.

Measures, in one run:
- the Kafka round-trip floor: a message produced to a topic, echoed by a trivial
  consumer/producer pair (like the worker, without its work), read back by a group-less
  reader (like the API's ACK listener) — the part of a synchronous POST no API code can save;
- sequential synchronous POST /orders creates (waiting for the worker's ACK): p50/p95/p99;
- non-waiting POSTs (`?wait=false`) at several concurrency levels: requests per second;
- GET /orders/{order_id} at the same levels: requests per second;
- GET /health at the same levels: the baseline of a request that does no work (the
  framework, the server and the load generator alone), so the throughputs can be read as
  ratios to it: this machine is shared and its speed varies from one run to the next.
Bounded in count and time; loopback only.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from kafka import TopicPartition

from orderstream.kafka import ensure_topics, make_consumer, make_producer

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class BenchConfig:
    base_url: str = "http://127.0.0.1:8080"
    sync_requests: int = 300
    floor_samples: int = 300
    concurrency: list[int] = field(default_factory=lambda: [1, 4, 16, 32])
    duration: float = 5.0
    json_path: str = "bench_api.json"


def percentiles(samples_ms: list[float]) -> dict:
    if not samples_ms:
        return {"n": 0}
    ordered = sorted(samples_ms)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {
        "n": len(ordered),
        "p50": pick(0.50),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "mean": round(statistics.fmean(ordered), 2),
        "max": round(ordered[-1], 2),
    }


class Client:
    """One keep-alive HTTP connection."""

    def __init__(self, base_url: str):
        parts = urlsplit(base_url)
        if parts.hostname not in LOOPBACK:
            raise SystemExit(f"refusing to load-test {parts.hostname}: loopback only")
        self.host, self.port = parts.hostname, parts.port or 80
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                return response.status, json.loads(response.read() or b"{}")
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def order_body() -> dict:
    return {
        "user_id": str(uuid.uuid4()),
        "payload": {"id": f"bench-{uuid.uuid4().hex[:12]}", "items": [{"price": 9.5, "qty": 2}]},
    }


def kafka_floor(samples: int) -> dict:
    """Round trip produce → echo (consume + produce + flush) → group-less reader, in ms."""
    suffix = uuid.uuid4().hex[:8]
    inbound, outbound = f"bench.echo.in.{suffix}", f"bench.echo.out.{suffix}"
    ensure_topics({inbound: 1, outbound: 1})
    stop = threading.Event()
    ready = threading.Event()

    def echo() -> None:
        consumer = make_consumer(group_id=None, client_id="bench-echo")
        producer = make_producer(client_id="bench-echo")
        tp = TopicPartition(inbound, 0)
        consumer.assign([tp])
        consumer.seek_to_end(tp)
        consumer.position(tp)
        ready.set()
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=100).values():
                for record in records:
                    producer.send(outbound, key=record.key, value=record.value)
                producer.flush()
        consumer.close()
        producer.close()

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    ready.wait(30)
    reader = make_consumer(group_id=None, client_id="bench-reader")
    out_tp = TopicPartition(outbound, 0)
    reader.assign([out_tp])
    reader.seek_to_end(out_tp)
    reader.position(out_tp)
    producer = make_producer(client_id="bench-producer")
    times = []
    try:
        for n in range(samples):
            marker = str(n).encode()
            started = time.perf_counter()
            producer.send(inbound, key=marker, value=marker)
            deadline = started + 5
            found = False
            while not found and time.perf_counter() < deadline:
                for records in reader.poll(timeout_ms=50).values():
                    found = found or any(r.value == marker for r in records)
            if found:
                times.append((time.perf_counter() - started) * 1000)
    finally:
        stop.set()
        thread.join(5)
        reader.close()
        producer.close()
    return percentiles(times)


def sync_creates(base_url: str, count: int) -> tuple[dict, dict, list[str]]:
    client = Client(base_url)
    times, statuses, ids = [], {}, []
    for _ in range(count):
        started = time.perf_counter()
        status, body = client.request("POST", "/orders", order_body())
        times.append((time.perf_counter() - started) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        if body.get("order_id"):
            ids.append(body["order_id"])
    return percentiles(times), statuses, ids


def load(base_url: str, concurrency: int, duration: float, make_request) -> dict:
    """`concurrency` threads each sending `make_request(client)` for `duration` seconds."""
    stop_at = time.perf_counter() + duration
    results: list[list[float]] = [[] for _ in range(concurrency)]
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def run(index: int) -> None:
        client = Client(base_url)
        local: dict[int, int] = {}
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            status = make_request(client)
            results[index].append((time.perf_counter() - started) * 1000)
            local[status] = local.get(status, 0) + 1
        with lock:
            for status, count in local.items():
                statuses[status] = statuses.get(status, 0) + count

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 60)
    elapsed = time.perf_counter() - started
    samples = [t for per_thread in results for t in per_thread]
    ok = sum(count for status, count in statuses.items() if status < 400)
    return {
        "concurrency": concurrency,
        "requests": len(samples),
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "rps": round(ok / elapsed, 1),
        "latency_ms": percentiles(samples),
    }


def run_bench(config: BenchConfig, out) -> dict:
    client = Client(config.base_url)
    status, _ = client.request("GET", "/health")
    if status != 200:
        raise SystemExit(f"the API at {config.base_url} is not healthy ({status})")
    out.write("warming up...\n")
    sync_creates(config.base_url, 20)

    out.write(f"Kafka round-trip floor ({config.floor_samples} samples)...\n")
    floor = kafka_floor(config.floor_samples)
    out.write(f"synchronous creates ({config.sync_requests} sequential)...\n")
    sync, sync_statuses, ids = sync_creates(config.base_url, config.sync_requests)

    def post_nowait(c: Client) -> int:
        return c.request("POST", "/orders?wait=false", order_body())[0]

    def get_one(c: Client) -> int:
        return c.request("GET", f"/orders/{ids[int(time.perf_counter_ns()) % len(ids)]}")[0]

    def get_health(c: Client) -> int:
        return c.request("GET", "/health")[0]

    # Each level's baseline runs right before the runs it is compared with.
    runs = {"nowait_create": [], "get_order": [], "health": []}
    for level in config.concurrency:
        for key, label, make_request in (
            ("health", "GET /health (baseline)", get_health),
            ("nowait_create", "non-waiting POST", post_nowait),
            ("get_order", "GET /orders/{id}", get_one),
        ):
            out.write(f"{label} at concurrency {level} for {config.duration}s...\n")
            runs[key].append(load(config.base_url, level, config.duration, make_request))

    report = {
        "base_url": config.base_url,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kafka_round_trip_floor_ms": floor,
        "sync_create_ms": sync,
        "sync_create_statuses": {str(k): v for k, v in sync_statuses.items()},
        "sync_create_p50_over_floor_p50": round(sync["p50"] / floor["p50"], 2)
        if floor.get("p50")
        else None,
        **runs,
        "nowait_create_over_health": [
            round(post["rps"] / health["rps"], 3) if health["rps"] else None
            for post, health in zip(runs["nowait_create"], runs["health"], strict=True)
        ],
    }
    with open(config.json_path, "w") as fh:
        json.dump(report, fh, indent=2)
    out.write(format_table(report))
    out.write(f"\nwritten to {config.json_path}\n")
    return report


def format_table(report: dict) -> str:
    floor, sync = report["kafka_round_trip_floor_ms"], report["sync_create_ms"]
    lines = [
        "",
        f"{'measure':44} {'p50':>8} {'p95':>8} {'p99':>8} {'n':>7}",
        f"{'Kafka round trip floor (ms)':44} {floor.get('p50', '-'):>8} "
        f"{floor.get('p95', '-'):>8} {floor.get('p99', '-'):>8} {floor.get('n', 0):>7}",
        f"{'synchronous POST create (ms)':44} {sync['p50']:>8} {sync['p95']:>8} "
        f"{sync['p99']:>8} {sync['n']:>7}",
        f"  statuses {report['sync_create_statuses']}; p50 / floor p50 = "
        f"{report['sync_create_p50_over_floor_p50']}",
        "",
        f"{'throughput':44} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}",
    ]
    for name, rows in (
        ("POST ?wait=false", report["nowait_create"]),
        ("GET /orders/{id}", report["get_order"]),
        ("GET /health (baseline)", report["health"]),
    ):
        for row in rows:
            errors = row["requests"] - row["ok"]
            lines.append(
                f"{name + ' @ concurrency ' + str(row['concurrency']):44} {row['rps']:>8} "
                f"{row['latency_ms']['p50']:>8} {row['latency_ms']['p99']:>8} {errors:>7}"
            )
    ratios = ", ".join(
        f"{ratio} at c={row['concurrency']}"
        for ratio, row in zip(report["nowait_create_over_health"], report["health"], strict=True)
    )
    lines.append(f"  non-waiting POST req/s / GET /health req/s: {ratios}")
    return "\n".join(lines) + "\n"
