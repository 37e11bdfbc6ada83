"""The Kafka drivers side by side (`make bench`, `--drivers`): the synchronous create, the
worker's CPU per event under the live load and the worker's drain, measured with each
driver KAFKA_CLIENT names, in interleaved rounds of one run (bench/driver_rounds.py).

- `stack_rounds`: per round and driver, the API's server, the relay and the worker
  started with KAFKA_CLIENT=<driver> (the processes read their settings from the
  environment) on topics and groups of their own; this process's clients (the Kafka
  round-trip floor's) use the same driver. Measured as the API benchmark measures them
  (bench/api.py): the floor, sequential synchronous creates, then the paced live load
  and the worker's CPU per event applied (and with `--profile`, in round 1, py-spy on
  the worker during a second paced load); then the processes stop.
- `drain_rounds`: per round and driver, the batched worker draining N events in this
  process (bench/worker.py `bench_drain`) with settings.KAFKA_CLIENT = <driver>.

The report and its table: bench/drivers_report.py.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.test.utils import override_settings

from bench.api import (
    BenchConfig,
    Client,
    kafka_floor,
    live_load_phase,
    order_body,
    paced_creates,
    sequential_creates,
)
from bench.driver_rounds import stack_names
from bench.profile import Profile
from bench.servers import Process, start_stack, stop_all, wait_healthy
from bench.worker import (
    BenchOrderWorker,
    bench_cleanup_redis,
    bench_database_use,
    bench_drain,
    bench_events,
)
from devstack.polling import poll_until
from devstack.ports import free_port
from devstack.processes import child_pids
from orderstream.kafka import ensure_topics

# How long a fresh stack may take until a synchronous create gets the worker's answer (its
# group joined, its partitions assigned).
READY_TIMEOUT = 120.0


@dataclass(frozen=True)
class StackShares:
    """What one round of one driver's stack measures."""

    floor_samples: int
    sync_requests: int
    live_rate: float
    live_seconds: float
    profile_dir: Path | None = None  # `--profile`: the worker's profile in round 1, here


def driver_of_threads(names: list[str]) -> str:
    """The Kafka driver of a process with threads `names`: librdkafka names its own
    `rdk:main`, `rdk:broker-N` ...; kafka-python starts none of that name."""
    return "confluent" if any(name.startswith("rdk:") for name in names) else "kafka-python"


def thread_names(pid: int) -> list[str]:
    names = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            names.append((task / "comm").read_text().strip())
    return names


def check_drivers(driver: str, pids: dict[str, int]) -> None:
    """Stop the bench when a process of the round runs another driver than `driver` (its
    setting did not reach it: the figures would be the other driver's)."""
    for name, pid in pids.items():
        running = driver_of_threads(thread_names(pid))
        if running != driver:
            raise SystemExit(f"the {name} (pid {pid}) runs {running}, not {driver}")


def wait_answered(base_url: str, processes: list[Process]) -> None:
    """Wait until a synchronous create answers 200 (the worker applied it and its ACK came
    back): the stack's whole path runs, not just its HTTP server."""
    client = Client(base_url)

    def answered() -> bool:
        for process in processes:
            process.check_alive()
        return client.request("POST", "/orders", order_body())[0] == 200

    if not poll_until(answered, READY_TIMEOUT, interval=0.5):
        raise SystemExit(f"no synchronous create answered 200 within {READY_TIMEOUT:.0f} s")


def stack_round(driver: str, round_number: int, shares: StackShares, *, log_dir: Path, out):
    """One round of `driver`'s stack: its figures (floor, creates, live load) as a dict."""
    names = stack_names(driver, round_number)
    partitions = settings.ORDERS_EVENTS_PARTITIONS
    api_port = free_port()
    base_url = f"http://127.0.0.1:{api_port}"
    out.write(f"drivers, round {round_number}: {driver}\n")
    processes: list[Process] = []
    with override_settings(KAFKA_CLIENT=driver):  # this process's clients too
        ensure_topics(
            {
                names["ORDERS_EVENTS_TOPIC"]: partitions,
                names["ORDERS_ACK_TOPIC"]: partitions,
                names["ORDERS_DLQ_TOPIC"]: 1,
            }
        )
        try:
            api, worker = start_stack(
                processes,
                log_dir,
                api_port=api_port,
                env={"KAFKA_CLIENT": driver, **names},
                tag=f".{driver}",
            )
            wait_healthy(base_url, api)
            wait_answered(base_url, processes)
            api_workers = {f"API worker {pid}": pid for pid in child_pids(api.pid)}
            check_drivers(driver, {p.name: p.pid for p in processes if p is not api} | api_workers)
            sequential_creates(base_url, 20)  # warm-up, as the API benchmark's
            floor = kafka_floor(shares.floor_samples)
            sync, statuses, _ = sequential_creates(base_url, shares.sync_requests)
            config = BenchConfig(
                base_url=base_url,
                live_rate=shares.live_rate,
                live_seconds=shares.live_seconds,
                worker_pid=worker.pid,
            )
            live = live_load_phase(config, out)
            if shares.profile_dir and round_number == 1:
                live["profile"] = profile_worker(config, driver, shares.profile_dir, out)
            for process in processes:
                process.check_alive()
        finally:
            stop_all(processes)
    return {
        "driver": driver,
        "round": round_number,
        "floor_ms": [round(s, 3) for s in floor],
        "sync_ms": [round(s, 3) for s in sync],
        "sync_statuses": {str(status): count for status, count in statuses.items()},
        "live_load": live,
    }


def profile_worker(config: BenchConfig, driver: str, profile_dir: Path, out) -> str:
    """py-spy on the worker during a second paced load like the live one, after the
    measured one (py-spy takes CPU from the two cores): its file, or why there is none.
    Only the Python threads are sampled; librdkafka's own threads show in the live load's
    `cpu_ms_per_event_by_threads`."""
    out.write(f"profiling the {driver} worker during a paced load...\n")
    profile = Profile(
        pid=config.worker_pid,
        seconds=config.live_seconds,
        path=profile_dir / f"profile-worker-{driver}.json",
    )
    paced_creates(config)
    return profile.wait()


def stack_rounds(
    order: list[tuple[int, str]], shares: StackShares, *, log_dir: Path, out
) -> list[dict]:
    """`stack_round` for every (round, driver) of `order`, one after the other."""
    return [
        stack_round(driver, number, shares, log_dir=log_dir, out=out) for number, driver in order
    ]


def drain_rounds(
    order: list[tuple[int, str]], *, events: int, batch_size: int, database: str, out
) -> list[dict]:
    """The batched worker draining `events` fresh events with each (round, driver) of
    `order`, in database `database` (created and migrated if missing)."""
    bench_database_use(name=database)
    drained: list = []
    runs = []
    try:
        for number, driver in order:
            fresh = bench_events(events)
            drained += fresh
            with override_settings(KAFKA_CLIENT=driver):  # this process's clients too
                run = bench_drain(
                    name=f"batched-{driver}",
                    worker_class=BenchOrderWorker,
                    events=fresh,
                    batch_size=batch_size,
                )
            runs.append({"driver": driver, "round": number, **run.as_dict()})
            out.write(
                f"drivers, drain round {number}: {driver} {run.per_second:.0f} events/s, "
                f"{run.rebalances} rebalances\n"
            )
    finally:
        bench_cleanup_redis(drained)
    return runs
