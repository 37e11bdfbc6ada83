"""Scale-out (`make bench-scale-out`, `python -m bench scale-out`): what the whole pipeline
sustains with several API instances and relays, per worker count, and how long a new
worker takes to hold partitions.

`scripts/local_stack.py bench scale-out` runs it on a stack of its own, as `make bench`
(throwaway bench databases, a broker on a free port: with `BROKER=kafka KAFKA_NODES=3` a
three-node cluster). This module starts the project's processes on free 127.0.0.1 ports:
`apis` API servers (make run's each), `relays` relays, and the workers,
added count by count (1, 3, 6 by default) and never restarted in between, as an operator
scales out.

Each count:
- join: the new workers start while creates flow at `join_rate`/s (open loop); for each,
  the seconds from its start until its metrics answered and until it held partitions, and
  until the group held every partition of the events topic between its members again
  (the worker's `orderstream_worker_partitions_assigned` gauge, summed);
- capacity: bench/capacity.py's search for the highest rate of non-waiting creates,
  spread over every API instance, sustained with p99 under `targets.CAPACITY_P99_MS`, the
  outbox's oldest row younger than `targets.CAPACITY_OUTBOX_AGE_S`, and at most
  `MAX_UNAPPLIED_S` seconds of the rate left unapplied by the workers at the probe's end
  (the whole pipeline keeps up, not only the API and the relay). The search starts at
  the previous count's figure.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.api import wait_until_quiet
from bench.capacity import CapacityConfig, CapacitySearch, create_senders, probe_step
from bench.pacing import paced_run
from bench.servers import Process, api_command, manage_command, stop_all, wait_healthy
from devstack.ports import free_port

# Events created but not applied at a probe's end, in seconds of its rate, at most.
MAX_UNAPPLIED_S = 1.0
# How long a started worker may take to hold partitions (a rebalance under load).
JOIN_TIMEOUT_S = 60.0
JOIN_POLL_S = 0.1

PARTITIONS_GAUGE = re.compile(r"^orderstream_worker_partitions_assigned (\S+)$", re.MULTILINE)


def partitions_held(metrics_url: str) -> int | None:
    """The worker's partitions_assigned gauge; None while its metrics do not answer."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=2) as response:
            text = response.read().decode()
    except (OSError, urllib.error.URLError):
        return None
    match = PARTITIONS_GAUGE.search(text)
    return int(float(match.group(1))) if match else None


@dataclass
class Worker:
    process: Process
    metrics_url: str
    started_at: float = field(default_factory=time.monotonic)


@dataclass
class ScaleOutStack:
    """The processes of the scale-out run, each on its own free ports; stopped by `stop`."""

    log_dir: Path
    processes: list[Process] = field(default_factory=list)
    api_urls: list[str] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    _ports: set[int] = field(default_factory=set)

    def _port(self) -> int:
        port = next(p for p in iter(free_port, None) if p not in self._ports)
        self._ports.add(port)
        return port

    def _start(self, name: str, command: list[str], env: dict) -> Process:
        process = Process(name, command, log_dir=self.log_dir, env=env)
        self.processes.append(process)
        return process

    def start_apis(self, count: int) -> None:
        """`count` API servers, each healthy before the next starts (its port is bound)."""
        for n in range(1, count + 1):
            port = self._port()
            # each makes a metrics directory of its own (orderstream/api_server.py)
            process = self._start(f"api{n}", api_command(), {"API_PORT": str(port)})
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, process)
            self.api_urls.append(url)

    def start_relays(self, count: int) -> None:
        for n in range(1, count + 1):
            env = {"RELAY_METRICS_PORT": str(self._port())}
            self._start(f"relay{n}", manage_command("run_relay"), env)

    def start_worker(self) -> Worker:
        port = self._port()
        name = f"worker{len(self.workers) + 1}"
        process = self._start(
            name, manage_command("run_worker"), {"WORKER_METRICS_PORT": str(port)}
        )
        worker = Worker(process, f"http://127.0.0.1:{port}/metrics")
        self.workers.append(worker)
        return worker

    def partitions_total(self) -> int:
        return sum(partitions_held(worker.metrics_url) or 0 for worker in self.workers)

    def stop(self) -> None:
        stop_all(self.processes)


def watch_joins(stack: ScaleOutStack, new: list[Worker], partitions: int) -> dict:
    """Seconds from each new worker's start until its metrics answered and until it held
    partitions, and until the group held all `partitions` again (None: not within
    JOIN_TIMEOUT_S)."""
    began = min(worker.started_at for worker in new)
    metrics_s: dict[str, float | None] = {w.process.name: None for w in new}
    partitions_s: dict[str, float | None] = dict(metrics_s)
    balanced_s = None
    # A new worker can only hold partitions when there are partitions left for it.
    existing = len(stack.workers) - len(new)
    expect_partitions = {w.process.name for w in new[: max(0, partitions - existing)]}
    while time.monotonic() - began < JOIN_TIMEOUT_S:
        for worker in new:
            worker.process.check_alive()
            name = worker.process.name
            if partitions_s[name] is not None:
                continue
            held = partitions_held(worker.metrics_url)
            now = time.monotonic() - worker.started_at
            if held is not None and metrics_s[name] is None:
                metrics_s[name] = round(now, 2)
            if held:
                partitions_s[name] = round(now, 2)
        holding = all(partitions_s[name] is not None for name in expect_partitions)
        if holding and stack.partitions_total() == partitions:
            balanced_s = round(time.monotonic() - began, 2)
            break
        time.sleep(JOIN_POLL_S)
    return {"metrics_s": metrics_s, "partitions_s": partitions_s, "balanced_s": balanced_s}


def creates_in_background(urls: list[str], rate: float, seconds: float) -> threading.Thread:
    """Non-waiting creates at `rate`/s for `seconds`, open loop, on a thread."""
    make_sender = create_senders(urls, "/orders?wait=false")
    thread = threading.Thread(
        target=paced_run,
        kwargs={"rate": rate, "seconds": seconds, "senders": 8, "make_sender": make_sender},
        daemon=True,
    )
    thread.start()
    return thread


def scale_to(stack: ScaleOutStack, count: int, *, join_rate: float, partitions: int) -> dict:
    """Start workers up to `count` under `join_rate` creates/s; their join times."""
    load = creates_in_background(stack.api_urls, join_rate, JOIN_TIMEOUT_S) if join_rate else None
    new = [stack.start_worker() for _ in range(count - len(stack.workers))]
    joins = watch_joins(stack, new, partitions)
    if load is not None:
        load.join(JOIN_TIMEOUT_S + 60)
    return joins


def run_scale_out(
    config: CapacityConfig,
    *,
    log_dir: Path,
    apis: int,
    relays: int,
    worker_counts: list[int],
    join_rate: float,
    partitions: int,
    out,
) -> dict:
    """The join times and the sustained rate per worker count (see the module)."""
    config.max_unapplied_s = MAX_UNAPPLIED_S
    stack = ScaleOutStack(log_dir)
    levels = []
    try:
        stack.start_apis(apis)
        stack.start_relays(relays)
        out.write(f"{apis} APIs ({', '.join(stack.api_urls)}), {relays} relays\n")
        for count in worker_counts:
            joins = scale_to(stack, count, join_rate=join_rate, partitions=partitions)
            out.write(f"{count} workers: joined {joins}\n")
            wait_until_quiet()
            start = levels[-1]["best"] if levels and levels[-1]["best"] else config.start
            search = CapacitySearch(start, config.factor, config.resolution, config.max_probes)
            probes: list = []
            while probe_step(
                config,
                search,
                probes,
                urls=stack.api_urls,
                label=f"{count} wkr",
                project=True,
                out=out,
            ):
                pass
            levels.append({"workers": count, "best": search.best, "joins": joins, "probes": probes})
    finally:
        stack.stop()
    return {
        "apis": apis,
        "relays": relays,
        "partitions": partitions,
        "probe_seconds": config.seconds,
        "levels": levels,
    }


def format_scale_out(report: dict) -> str:
    lines = [
        f"\nscale-out: {report['apis']} APIs, {report['relays']} relays, "
        f"{report['partitions']} partitions, {report['probe_seconds']:g} s a probe",
        f"{'workers':>7}  {'sustained/s':>11}  {'x 1st':>6}  {'partitions s (each new)':<28}"
        f"  balanced s",
    ]
    first = report["levels"][0]["best"] if report["levels"] else None
    for level in report["levels"]:
        best = level["best"]
        ratio = f"{best / first:.2f}" if best and first else "-"
        taken = ", ".join(
            "-" if s is None else f"{s:g}" for s in level["joins"]["partitions_s"].values()
        )
        lines.append(
            f"{level['workers']:>7}  {best if best is not None else 'none':>11}  {ratio:>6}  "
            f"{taken:<28}  {level['joins']['balanced_s']}"
        )
    return "\n".join(lines) + "\n"
