"""Sustained capacity (`make bench-capacity`, `python -m bench capacity`): the highest rate
of non-waiting creates the whole pipeline (API, relay, broker, worker) sustains, against
the bare-DRF baseline's, each found the same way.

A probe offers one rate for `seconds`, open loop (bench/pacing.py: requests leave on a
schedule, each answer timed from when it was due), through `senders` keep-alive clients
of this process. It sustains the rate when every request was sent on time and answered
2xx, the answers' p99 stayed under `targets.CAPACITY_P99_MS`, and, for the project, the
outbox's oldest unpublished row, sampled every half second during the probe, stayed
younger than `targets.CAPACITY_OUTBOX_AGE_S`; with `max_unapplied_s` (the scale-out
bench, bench/scale_out.py), the events created but not yet applied by the workers at the
probe's end must also be at most that many seconds of the rate (the workers keep up). The
answers are timed from when each request was due, so a client that left late counts its
lateness against the server: a conservative figure. The client's lateness and CPU share
are kept with each probe, to show whether it could have been the bottleneck (a busy
machine delays its threads too).
Between probes the project's backlog drains (`wait_until_quiet`), and how long it took
is kept.

`CapacitySearch` grows the rate by `factor` until a probe fails, then halves the gap
between the best sustained rate and the lowest failed one until it is within
`resolution` of the best (or `max_probes` ran out).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connections

from bench import targets
from bench.api import Client, order_body, processed_events, wait_until_quiet
from bench.pacing import paced_run

# A probe must send at least this share of the asked rate.
MIN_SENT_SHARE = 0.95
OUTBOX_SAMPLE_SECONDS = 0.5


@dataclass
class CapacityConfig:
    base_url: str
    baseline_url: str
    start: float = 100.0
    factor: float = 1.5
    resolution: float = 0.1
    max_probes: int = 8
    seconds: float = 60.0
    senders: int = 64
    max_unapplied_s: float | None = None

    @classmethod
    def from_options(cls, options, **fields) -> CapacityConfig:
        return cls(
            start=options.capacity_start,
            factor=options.capacity_factor,
            resolution=options.capacity_resolution,
            max_probes=options.capacity_probes,
            seconds=options.capacity_seconds,
            senders=options.capacity_senders,
            **fields,
        )


@dataclass
class CapacitySearch:
    """Which rate to probe next, from the outcomes so far."""

    start: float
    factor: float
    resolution: float
    max_probes: int
    best: float | None = None  # the highest rate sustained
    lowest_failed: float | None = None
    probes: int = field(default=0)

    def next_rate(self) -> float | None:
        if self.probes >= self.max_probes:
            return None
        if self.probes == 0:
            return self.start
        if self.lowest_failed is None:
            return self.best * self.factor
        if self.best is None:
            return self.lowest_failed / self.factor
        if (self.lowest_failed - self.best) / self.best <= self.resolution:
            return None
        return (self.best + self.lowest_failed) / 2

    def record(self, rate: float, *, sustained: bool) -> None:
        self.probes += 1
        if sustained:
            self.best = rate if self.best is None else max(self.best, rate)
        else:
            self.lowest_failed = (
                rate if self.lowest_failed is None else min(self.lowest_failed, rate)
            )


def probe_verdict(probe: dict, max_unapplied_s: float | None = None) -> list[str]:
    """Why a probe did not sustain its rate; empty when it did."""
    reasons = []
    if probe["rate_sent"] < MIN_SENT_SHARE * probe["rate_asked"]:
        reasons.append(f"sent {probe['rate_sent']}/s of {probe['rate_asked']}/s")
    failed = sum(n for status, n in probe["statuses"].items() if not str(status).startswith("2"))
    if failed:
        reasons.append(f"{failed} answers not 2xx")
    p99 = probe["latency_ms"].get("p99")
    if p99 is None or p99 >= targets.CAPACITY_P99_MS:
        reasons.append(f"p99 {p99} ms >= {targets.CAPACITY_P99_MS:g} ms")
    oldest = probe["outbox_oldest_s"]
    if oldest is not None and oldest >= targets.CAPACITY_OUTBOX_AGE_S:
        reasons.append(f"outbox's oldest row {oldest} s >= {targets.CAPACITY_OUTBOX_AGE_S:g} s")
    unapplied = probe.get("unapplied_at_end")
    if max_unapplied_s is not None and unapplied > max_unapplied_s * probe["rate_asked"]:
        reasons.append(
            f"{unapplied} events unapplied at the end > {max_unapplied_s:g} s of the rate"
        )
    return reasons


def capacity_report(*, project: dict, baseline: dict) -> dict:
    ratio = targets.ratio(project["best"], baseline["best"])
    return {
        "project": project,
        "baseline": baseline,
        "ratio": ratio,
        "meets_target": None if ratio is None else ratio >= targets.TARGET_CAPACITY,
    }


def _outbox_oldest_seconds() -> float:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) "
            "FROM orders_api_outboxevent WHERE published_at IS NULL AND parked_at IS NULL"
        )
        return float(cursor.fetchone()[0])


class OutboxWatch:
    """The outbox's oldest unpublished row's age, sampled on a thread during a probe."""

    def __init__(self):
        self.oldest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> OutboxWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        try:
            while not self._stop.wait(OUTBOX_SAMPLE_SECONDS):
                self.oldest = max(self.oldest, _outbox_oldest_seconds())
        finally:
            connections.close_all()


def create_senders(urls: list[str], path: str) -> Callable[[], Callable[[], int]]:
    """`make_sender` of paced_run: each sender a keep-alive client of the next of `urls` in
    turn, POSTing one new order to `path` a call (status 0 when the connection failed)."""
    senders_made = itertools.count()

    def make_sender() -> Callable[[], int]:
        client = Client(urls[next(senders_made) % len(urls)])

        def send() -> int:
            try:
                return client.request("POST", path, order_body())[0]
            except OSError:
                return 0

        return send

    return make_sender


def probe(config: CapacityConfig, urls: list[str], rate: float, *, watch_outbox: bool) -> dict:
    """One open-loop run of non-waiting creates at `rate`/s, the senders spread over `urls`
    in turn. `watch_outbox`: the project (the outbox watched, the backlog drained after)."""
    make_sender = create_senders(urls, "/orders?wait=false" if watch_outbox else "/orders")

    def run() -> dict:
        return paced_run(
            rate=rate, seconds=config.seconds, senders=config.senders, make_sender=make_sender
        )

    cpu_before, started = sum(os.times()[:2]), time.perf_counter()
    if watch_outbox:
        applied_before = processed_events()
        with OutboxWatch() as watch:
            result = run()
        created = sum(n for status, n in result["statuses"].items() if status.startswith("2"))
        result["unapplied_at_end"] = created - (processed_events() - applied_before)
        result["outbox_oldest_s"] = round(watch.oldest, 3)
    else:
        result = run()
        result["outbox_oldest_s"] = None
    wall = time.perf_counter() - started
    result["client_cpu_share"] = round((sum(os.times()[:2]) - cpu_before) / wall, 3)
    result["load_average"] = os.getloadavg()[0]
    if watch_outbox:
        drain_started = time.monotonic()
        result["drained"] = wait_until_quiet()
        result["drain_seconds"] = round(time.monotonic() - drain_started, 1)
    result["verdict"] = probe_verdict(result, config.max_unapplied_s)
    return result


def probe_step(
    config: CapacityConfig,
    search: CapacitySearch,
    probes: list,
    *,
    urls: list[str],
    label: str,
    project: bool,
    out,
) -> bool:
    """Run the search's next probe against `urls`, if any; False when the search is over."""
    rate = search.next_rate()
    if rate is None:
        return False
    rate = round(rate, 1)
    result = probe(config, urls, rate, watch_outbox=project)
    search.record(rate, sustained=not result["verdict"])
    probes.append(result)
    unapplied = result.get("unapplied_at_end")
    unapplied = "" if unapplied is None else f", unapplied {unapplied}"
    out.write(
        f"  {label:<8} {rate:>7.1f}/s: p99 "
        f"{result['latency_ms'].get('p99')} ms, outbox {result['outbox_oldest_s']} s"
        f"{unapplied}, client late p99 {result['lateness_ms'].get('p99')} ms, CPU "
        f"{result['client_cpu_share']}, load {result['load_average']:.1f}: "
        f"{'; '.join(result['verdict']) or 'sustained'}\n"
    )
    return True


def run_capacity(config: CapacityConfig, out) -> dict:
    """Both searches, their probes interleaved (baseline, project, baseline, ...): the
    machine's speed changes, so each side's probes share its stretches. The project's
    first probe starts on a drained stack."""
    out.write(f"sustained capacity: {config.seconds:.0f}s a probe, open loop\n")
    wait_until_quiet()
    searches = {
        side: CapacitySearch(config.start, config.factor, config.resolution, config.max_probes)
        for side in ("baseline", "project")
    }
    probes: dict[str, list] = {"baseline": [], "project": []}
    going = {"baseline": True, "project": True}
    while any(going.values()):
        for side in ("baseline", "project"):
            if going[side]:
                going[side] = probe_step(
                    config,
                    searches[side],
                    probes[side],
                    urls=[config.base_url if side == "project" else config.baseline_url],
                    label=side,
                    project=side == "project",
                    out=out,
                )
    return capacity_report(
        **{side: {"best": searches[side].best, "probes": probes[side]} for side in searches}
    )


def add_capacity_options(parser) -> None:
    """The capacity mode's options, shared by `python -m bench capacity` and `make bench`."""
    parser.add_argument("--capacity-start", type=float, default=100.0, help="first rate, /s")
    parser.add_argument(
        "--capacity-factor", type=float, default=1.5, help="rate growth until a probe fails"
    )
    parser.add_argument(
        "--capacity-resolution",
        type=float,
        default=0.1,
        help="stop when the failed rate is within this share of the sustained one",
    )
    parser.add_argument("--capacity-probes", type=int, default=8, help="probes per side, at most")
    parser.add_argument("--capacity-seconds", type=float, default=60.0, help="seconds a probe")
    parser.add_argument(
        "--capacity-senders", type=int, default=64, help="the open-loop client's connections"
    )


def format_capacity(report: dict) -> str:
    def best(side: dict) -> str:
        return "none sustained" if side["best"] is None else f"{side['best']:.1f}/s"

    return (
        f"\nsustained creates: project {best(report['project'])}, baseline "
        f"{best(report['baseline'])}, ratio {report['ratio']} (target >= "
        f"{targets.TARGET_CAPACITY})\n"
    )
