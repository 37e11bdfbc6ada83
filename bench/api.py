"""The API benchmark: the project against its bare-DRF baseline, measured in one run.

In one run, on 127.0.0.1 only (`run_bench`):
- the Kafka round-trip floor: a message produced, echoed by a trivial consumer/producer
  pair (the worker without its work), read back by a group-less reader (the API's ACK
  listener): the part of a synchronous POST no API code can save;
- sequential creates (the Python client, concurrency 1): synchronous POST /orders
  (waiting for the worker's ACK) and the baseline's POST /orders, interleaved;
- with wrk at each concurrency level, interleaved (baseline, project, baseline, project):
  non-waiting creates (`?wait=false`) against the baseline's create, and GET /orders/{id}
  against the baseline's GET of one row by primary key; ratios per level;
- with a worker pid: a paced open-loop load of non-waiting creates (200/s) and the
  worker's CPU time per event it applied.
The baseline (bench/baseline.py) is served by a server of its own with the API's
workers and threads; the targets are in bench/targets.py.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from django.db import connections

from bench import targets
from bench.api_report import api_report
from bench.cpu_time import process_cpu_seconds, thread_cpu_seconds
from bench.pacing import paced_run
from bench.profile import Profile
from bench.wrk import get_script, post_script, wrk_path, wrk_run
from devstack.processes import child_pids
from orderstream.kafka import TopicPartition, ensure_topics, make_consumer, make_producer

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class BenchConfig:
    base_url: str = "http://127.0.0.1:8080"
    baseline_url: str = "http://127.0.0.1:8081"
    sync_requests: int = 300
    floor_samples: int = 300
    concurrency: list[int] = field(default_factory=lambda: [1, 4, 16, 32])
    duration: float = 4.0
    rounds: int = 2  # interleaved baseline/project pairs per level
    live_rate: float = 200.0
    live_seconds: float = 10.0
    out_dir: str = "bench-results"
    profile: bool = False
    api_pid: int | None = None  # the API server's main process, for --profile
    worker_pid: int | None = None  # the worker process: the live-load measurement needs it

    @classmethod
    def from_options(cls, options, **fields) -> BenchConfig:
        """The measures' options of `python -m bench api` and `make bench` (argparse
        namespaces with the same names), and `fields` (URLs, pids, output folder)."""
        return cls(
            sync_requests=options.sync_requests,
            floor_samples=options.floor_samples,
            concurrency=[int(c) for c in options.concurrency.split(",") if c.strip()],
            duration=options.duration,
            rounds=options.rounds,
            profile=options.profile,
            **fields,
        )


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


def kafka_floor(samples: int) -> list[float]:
    """Round trips produce → echo (consume + produce + flush) → group-less reader, in ms."""
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
    return times


def sequential_creates(base_url: str, count: int, path: str = "/orders") -> tuple:
    """`count` POSTs one after the other: (latencies in ms, statuses, order ids)."""
    client = Client(base_url)
    times, statuses, ids = [], {}, []
    for _ in range(count):
        started = time.perf_counter()
        status, body = client.request("POST", path, order_body())
        times.append((time.perf_counter() - started) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        if body.get("order_id"):
            ids.append(body["order_id"])
    return times, statuses, ids


def _merge_counts(into: dict, more: dict) -> dict:
    for key, value in more.items():
        into[str(key)] = into.get(str(key), 0) + value
    return into


def sequential_phase(config: BenchConfig, out) -> dict:
    """The floor, then synchronous creates and the baseline's creates, interleaved in
    `rounds` halves; all at concurrency 1 with the Python client."""
    out.write(f"Kafka round-trip floor ({config.floor_samples} samples)...\n")
    floor = kafka_floor(config.floor_samples)
    sync, baseline, ids = [], [], []
    sync_statuses: dict = {}
    baseline_statuses: dict = {}
    share = max(1, config.sync_requests // config.rounds)
    for n in range(config.rounds):
        out.write(f"sequential creates, round {n + 1}/{config.rounds} ({share} each)...\n")
        times, statuses, _ = sequential_creates(config.baseline_url, share)
        baseline += times
        _merge_counts(baseline_statuses, statuses)
        times, statuses, new_ids = sequential_creates(config.base_url, share)
        sync += times
        ids += new_ids
        _merge_counts(sync_statuses, statuses)
    return {
        "floor": floor,
        "sync": sync,
        "baseline": baseline,
        "ids": ids,
        "sync_statuses": sync_statuses,
        "baseline_statuses": baseline_statuses,
    }


def _one_api_worker(master_pid: int | None) -> int | None:
    workers = child_pids(master_pid) if master_pid else []
    return workers[0] if workers else None


@dataclass(frozen=True)
class LoadShape:
    """One kind of wrk run: which server, which requests (a POST, or a GET of `ids`)."""

    key: str
    url: str
    path: str
    ids: list[str] | None = None
    project: bool = False

    def script(self, seed: int) -> str:
        if self.ids is None:
            return post_script(self.path, seed=seed)
        return get_script(self.path, self.ids, seed=seed)


def load_shapes(config: BenchConfig, ids: list[str]) -> tuple[tuple[LoadShape, ...], ...]:
    """The groups compared, baseline first: creates (non-waiting, then waiting), then
    reads of the same orders."""
    return (
        (
            LoadShape("baseline_create", config.baseline_url, "/orders"),
            LoadShape("nowait_create", config.base_url, "/orders?wait=false", project=True),
            # make run's default POST: it waits for the worker's ACK (no target of its own).
            LoadShape("sync_create", config.base_url, "/orders", project=True),
        ),
        (
            LoadShape("baseline_get", config.baseline_url, "/orders/", ids),
            LoadShape("get_order", config.base_url, "/orders/", ids, project=True),
        ),
    )


def throughput_phase(config: BenchConfig, ids: list[str], out) -> dict[str, list[dict]]:
    """wrk at each level: for creates, then reads, `rounds` baseline/project pairs in turn.
    A short unmeasured run of each shape first warms both servers' threads and caches.

    Every run starts on a quiet stack: the events of the project's creates still waiting
    for the relay or the worker when its run ends would otherwise take CPU from the run
    after it (a baseline's, or a read's). How long that backlog took to drain is kept with
    the run (`drain_seconds`, and `drained` False when it did not drain in time)."""
    runs: dict[str, list[dict]] = {}
    pairs = load_shapes(config, ids)
    for shape in (shape for pair in pairs for shape in pair):
        runs[shape.key] = []
        wrk_run(url=shape.url, script=shape.script(0), concurrency=4, seconds=1)
    wait_until_quiet()
    for level in config.concurrency:
        for pair in pairs:
            for round_number in range(1, config.rounds + 1):
                for shape in pair:
                    result = wrk_run(
                        url=shape.url,
                        script=shape.script(seed=level * 10 + round_number),
                        concurrency=level,
                        seconds=config.duration,
                    ).as_dict(level)
                    result["round"] = round_number
                    drain_started = time.monotonic()
                    result["drained"] = wait_until_quiet()  # False: the next run began busy
                    result["drain_seconds"] = round(time.monotonic() - drain_started, 1)
                    runs[shape.key].append(result)
                    out.write(
                        f"  {shape.key:<16} c={level:<3} round {round_number}: "
                        f"{result['rps']:>8} req/s, {result['errors']} errors, "
                        f"wrk CPU {result['wrk_cpu_share']:.2f}\n"
                    )
    return runs


def profile_phase(config: BenchConfig, ids: list[str], out_dir: Path, out) -> dict[str, str]:
    """`--profile`, after the measured runs (py-spy takes CPU from the two cores): one
    API worker during a wrk run of each project request kind at the top level, and
    the worker during a paced load like the live one. Returns what -> file (or why none)."""
    profiles: dict[str, str] = {}
    api_pid = _one_api_worker(config.api_pid)
    top = max(config.concurrency)
    for shape in (shape for pair in load_shapes(config, ids) for shape in pair):
        if not (shape.project and api_pid):
            continue
        out.write(f"profiling an API worker during {shape.key} at c={top}...\n")
        path = out_dir / f"profile-api-{shape.key}.json"
        profile = Profile(pid=api_pid, seconds=config.duration, path=path)
        wrk_run(url=shape.url, script=shape.script(1), concurrency=top, seconds=config.duration)
        profiles[f"API {shape.key} c={top}"] = profile.wait()
    if config.worker_pid:
        out.write("profiling the worker during a paced load...\n")
        path = out_dir / "profile-worker-live.json"
        profile = Profile(pid=config.worker_pid, seconds=config.live_seconds, path=path)
        paced_creates(config)
        profiles["worker under the live load"] = profile.wait()
    return profiles


def processed_events() -> int:
    with connections["worker"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM orders_worker_processedevent")
        return cursor.fetchone()[0]


def _unpublished_outbox() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM orders_api_outboxevent "
            "WHERE published_at IS NULL AND parked_at IS NULL"
        )
        return cursor.fetchone()[0]


def wait_until_quiet(deadline_seconds: float = 180.0) -> bool:
    """Wait until the relay published every event and the worker's count of applied events
    held still for a second: the backlog of the throughput levels is drained."""
    deadline = time.monotonic() + deadline_seconds
    last = -1
    while time.monotonic() < deadline:
        count = processed_events()
        if count == last and _unpublished_outbox() == 0:
            return True
        last = count
        time.sleep(1.0)
    return False


# Senders of the paced load: enough that requests leave on time while the API is slow
# (200/s with 50 ms answers needs 10 busy at once).
PACED_SENDERS = 32


def paced_creates(config: BenchConfig) -> dict:
    """Non-waiting creates at `live_rate`/s for `live_seconds`, open loop."""

    def make_sender():
        client = Client(config.base_url)
        return lambda: client.request("POST", "/orders?wait=false", order_body())[0]

    return paced_run(
        rate=config.live_rate,
        seconds=config.live_seconds,
        senders=PACED_SENDERS,
        make_sender=make_sender,
    )


def live_load_phase(config: BenchConfig, out) -> dict:
    """Paced non-waiting creates at `live_rate`/s; the worker's CPU time per event applied,
    from its /proc CPU time from the load's start until it applied them all."""
    out.write("waiting for the worker to drain the backlog...\n")
    quiet = wait_until_quiet()
    before_events = processed_events()
    before_cpu = process_cpu_seconds(config.worker_pid)
    before_threads = thread_cpu_seconds(config.worker_pid)
    out.write(f"live load: {config.live_rate:.0f} creates/s for {config.live_seconds:.0f}s...\n")
    started = time.perf_counter()

    load = paced_creates(config)
    accepted = sum(v for k, v in load["statuses"].items() if int(k) < 300)
    deadline = time.monotonic() + 60
    applied = processed_events() - before_events
    while applied < accepted and time.monotonic() < deadline:
        time.sleep(0.05)
        applied = processed_events() - before_events
    cpu = process_cpu_seconds(config.worker_pid) - before_cpu
    threads = thread_cpu_seconds(config.worker_pid)
    wall = time.perf_counter() - started
    result = {
        "load": load,
        "drained_before": quiet,
        "events_applied": applied,
        "worker_cpu_seconds": round(cpu, 3),
        "wall_seconds": round(wall, 2),
        "worker_cpu_share": round(cpu / wall, 3) if wall else None,
        "cpu_ms_per_event": targets.cpu_ms_per_event(cpu, applied),
        # the same, by the threads that spent it (librdkafka's own, the rest)
        "cpu_ms_per_event_by_threads": {
            group: targets.cpu_ms_per_event(seconds - before_threads.get(group, 0.0), applied)
            for group, seconds in sorted(threads.items())
        },
    }
    result["meets_target"] = (
        None
        if result["cpu_ms_per_event"] is None
        else result["cpu_ms_per_event"] <= targets.TARGET_CPU_MS_PER_EVENT
    )
    return result


def _healthy(url: str) -> None:
    status, _ = Client(url).request("GET", "/health")
    if status != 200:
        raise SystemExit(f"{url} is not healthy ({status})")


def run_bench(config: BenchConfig, out) -> dict:
    """The whole API benchmark; returns the report (see `api_report`)."""
    wrk_path()  # fail now, not after the sequential phase, when wrk is missing
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _healthy(config.base_url)
    _healthy(config.baseline_url)
    out.write("warming up...\n")
    sequential_creates(config.base_url, 20)
    sequential_creates(config.baseline_url, 20)
    sequential = sequential_phase(config, out)
    if not sequential["ids"]:
        raise SystemExit("no order was created: is the API answering POST /orders?")
    out.write(f"throughput (wrk, {config.duration}s a run, {config.rounds} rounds a level)...\n")
    runs = throughput_phase(config, sequential["ids"], out)
    live = live_load_phase(config, out) if config.worker_pid else None
    profiles = profile_phase(config, sequential["ids"], out_dir, out) if config.profile else {}
    return api_report(config, sequential, runs, live, profiles)
