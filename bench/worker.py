"""The worker benchmark, all in one run: drain N events with the batched worker and with the
naive per-event design; measure K, a Kafka-only loop's rate (the worker's Kafka work and
nothing else), and P, the raw PostgreSQL rate of the worker's own writes; report the
ceiling 1/(1/K + 1/P) and the worker's ratio to it (bench/targets.py).

Every drain counts its group's assignment changes: a run with a rebalance (a member
that overran max_poll_interval_ms and was thrown out) measured the rejoin, not the work,
so each reports `rebalances` and the naive design polls at most NAIVE_POLL_RECORDS at a
time (one event a transaction, a Redis call and a flush each: a poll of 500 can take
longer than the poll interval on a slow machine).

Runs on its own database (`<worker db>_bench`, created and migrated here), its own topics
and consumer groups, and by default its own embedded Tansu broker, so it never disturbs a
running stack. Redis keys written are deleted at the end.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, replace

import psycopg2
from django.conf import settings
from django.core.management import call_command
from django.db import connections, transaction
from django_redis import get_redis_connection

from bench import targets
from orders_worker.batch_statements import batch_write
from orders_worker.rules import order_event_decide
from orders_worker.services import DB_ALIAS, EventResult, _events_to_record
from orders_worker.worker import OrderWorker, WorkerConfig
from orderstream.kafka import (
    ConsumerRebalanceListener,
    OffsetAndMetadata,
    ensure_topics,
    make_consumer,
    make_producer,
)
from orderstream.kafka.clients import subscribe_once_known
from orderstream.messages import OrderAck, OrderEvent, OrderResult
from orderstream.timestamps import rfc3339, utc_now

logger = logging.getLogger(__name__)

# The naive design's poll size: a poll's events must be handled within the poll interval.
NAIVE_POLL_RECORDS = 50


class CountingAssignments:
    """A rebalance listener's counts of assignment changes: `rebalances` once the drain has
    started (its first batch: these are in the measured time), `rebalances_at_join` before
    (the first assignment is the join itself, not counted)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rebalances = 0
        self.rebalances_at_join = -1

    def _draining(self) -> bool:
        raise NotImplementedError

    def _count(self) -> None:
        if self._draining():
            self.rebalances += 1
        else:
            self.rebalances_at_join += 1

    def on_partitions_assigned(self, assigned) -> None:
        self._count()
        super().on_partitions_assigned(assigned)

    def on_partitions_lost(self, lost) -> None:
        self._count()
        super().on_partitions_lost(lost)


class BenchOrderWorker(CountingAssignments, OrderWorker):
    """The worker as it runs, counting its assignments."""

    def _draining(self) -> bool:
        return self.stats.first_batch_at is not None


class NaiveOrderWorker(BenchOrderWorker):
    """The baseline: one transaction, one Redis call and one ACK flush per event."""

    def _process(self, ordered: list) -> None:
        for record in ordered:
            super()._process([record])


@dataclass(frozen=True)
class BenchRun:
    """One drain: how many events, how long from the first batch to the last commit."""

    name: str
    events: int
    seconds: float
    batches: int
    rebalances: int | None = None
    rebalances_at_join: int | None = None

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "events_per_s": round(self.per_second, 1),
            "batches": self.batches,
            "rebalances": self.rebalances,
            "rebalances_at_join": self.rebalances_at_join,
        }


def bench_events(count: int) -> list[OrderEvent]:
    """`count` events: orders created and then updated (half each), JSON like the API's."""
    events = []
    now = rfc3339(utc_now())
    for n in range(0, count, 2):
        created = OrderEvent(
            event_id=str(uuid.uuid4()),
            order_id=str(uuid.uuid4()),
            user_id=str(uuid.uuid4()),
            payload={"id": f"bench-{n}", "items": [{"price": "9.99", "qty": 2}, {"price": 1}]},
            status="created",
            version=1,
            timestamp=now,
            external_id=f"bench-{n}",
        )
        events.append(created)
        if n + 1 < count:
            events.append(
                replace(
                    created,
                    event_id=str(uuid.uuid4()),
                    status="updated",
                    version=2,
                    payload={"id": f"bench-{n}", "amount": n},
                )
            )
    return events


def bench_database_use(*, name: str) -> None:
    """Create database `name` if missing, point the `worker` alias at it and migrate it."""
    params = connections[DB_ALIAS].get_connection_params()
    admin = psycopg2.connect(**{**params, "dbname": "postgres"})
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    connections[DB_ALIAS].close()
    connections[DB_ALIAS].settings_dict["NAME"] = name
    call_command("migrate", database=DB_ALIAS, verbosity=0)
    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute("TRUNCATE orders_worker_processedorder, orders_worker_processedevent")


def bench_topics(tag: str) -> dict[str, str]:
    """Fresh event/ACK/DLQ topics and a group for one drain, created on the broker."""
    suffix = f"{tag}.{uuid.uuid4().hex[:6]}"
    names = {
        "events_topic": f"bench.orders.events.{suffix}",
        "ack_topic": f"bench.orders.ack.{suffix}",
        "dlq_topic": f"bench.orders.events.dlq.{suffix}",
        "group": f"bench-workers-{suffix}",
    }
    partitions = settings.ORDERS_EVENTS_PARTITIONS
    ensure_topics(
        {names["events_topic"]: partitions, names["ack_topic"]: partitions, names["dlq_topic"]: 1}
    )
    return names


def bench_produce(*, topic: str, events: list[OrderEvent]) -> float:
    """Load the events onto `topic`; return the produce rate in messages/s."""
    producer = make_producer(linger_ms=20, batch_size=256 * 1024)
    started = time.perf_counter()
    for event in events:
        producer.send(topic, event.to_bytes(), key=event.key)
    producer.flush(timeout=120)
    elapsed = time.perf_counter() - started
    producer.close(timeout=5)
    return len(events) / elapsed


def bench_drain(
    *, name: str, worker_class: type[BenchOrderWorker], events, batch_size: int
) -> BenchRun:
    """Produce `events` to fresh topics, then run the worker until it handled them all."""
    names = bench_topics(name)
    rate = bench_produce(topic=names["events_topic"], events=events)
    logger.info("%s: loaded %d events (%.0f produced/s)", name, len(events), rate)
    worker = worker_class(
        WorkerConfig.from_settings(
            **names,
            batch_size=batch_size,
            max_messages=len(events),
            result_ttl=600,
            poll_timeout_ms=100,
        )
    )
    handled = worker.run()
    stats = worker.stats
    if handled != len(events) or stats.first_batch_at is None:
        raise RuntimeError(f"{name}: handled {handled} of {len(events)} events")
    seconds = stats.last_batch_at - stats.first_batch_at
    return BenchRun(
        name, handled, seconds, stats.batches, worker.rebalances, worker.rebalances_at_join
    )


class _NoRebalanceWork(ConsumerRebalanceListener):
    """A listener with nothing to do on a rebalance (the Kafka-only loop keeps no state)."""

    def on_partitions_revoked(self, revoked) -> None:
        pass

    def on_partitions_assigned(self, assigned) -> None:
        pass

    def on_partitions_lost(self, lost) -> None:
        pass


class KafkaOnlyLoop(CountingAssignments, _NoRebalanceWork):
    """K: the worker's Kafka work alone. Per poll (up to `batch_size`): decode each event,
    produce one ACK per event, flush, commit. No database, no Redis. The clients are built
    as the worker builds them (`BatchLoop._build_consumer`, `_build_producer`)."""

    def __init__(self, *, names: dict[str, str], batch_size: int, linger_ms: int):
        super().__init__()
        self.names = names
        self.consumer = make_consumer(
            group_id=names["group"], client_id="bench-kafka-only", max_poll_records=batch_size
        )
        self.producer = make_producer(
            client_id="bench-kafka-only", linger_ms=linger_ms, batch_size=256 * 1024
        )
        self.batch_size = batch_size
        self.first_batch_at: float | None = None

    def _draining(self) -> bool:
        return self.first_batch_at is not None

    def run(self, count: int, timeout: float = 300.0) -> BenchRun:
        deadline = time.monotonic() + timeout
        topic = self.names["events_topic"]
        while not subscribe_once_known(self.consumer, topic, self) and time.monotonic() < deadline:
            time.sleep(0.1)  # as the worker: join once the topic's partitions are known
        handled = batches = 0
        last = None
        ack_topic = self.names["ack_topic"]
        try:
            while handled < count and time.monotonic() < deadline:
                polled = self.consumer.poll(timeout_ms=100, max_records=self.batch_size)
                if not polled:
                    continue
                self.first_batch_at = self.first_batch_at or time.perf_counter()
                stamp = rfc3339(utc_now())
                for records in polled.values():
                    for record in records:
                        event = OrderEvent.from_bytes(record.value)
                        ack = OrderAck(event.event_id, event.order_id, "created", stamp)
                        self.producer.send(
                            ack_topic,
                            value=ack.to_bytes(),
                            key=record.key,
                            partition=record.partition,  # as the worker does (Outgoing)
                        )
                self.producer.flush(timeout=30)
                self.consumer.commit(
                    {
                        tp: OffsetAndMetadata(recs[-1].offset + 1, "", -1)
                        for tp, recs in polled.items()
                    }
                )
                handled += sum(len(recs) for recs in polled.values())
                batches += 1
                last = time.perf_counter()
        finally:
            self.consumer.close(autocommit=False)
            self.producer.close(timeout=5)
        if handled < count or self.first_batch_at is None:
            raise RuntimeError(f"kafka_only: handled {handled} of {count} events")
        seconds = last - self.first_batch_at
        return BenchRun(
            "kafka_only", handled, seconds, batches, self.rebalances, self.rebalances_at_join
        )


def bench_kafka_only(*, events: list[OrderEvent], batch_size: int) -> BenchRun:
    """K on fresh topics: `events` produced, then drained by `KafkaOnlyLoop`."""
    names = bench_topics("kafka-only")
    rate = bench_produce(topic=names["events_topic"], events=events)
    logger.info("kafka_only: loaded %d events (%.0f produced/s)", len(events), rate)
    loop = KafkaOnlyLoop(
        names=names, batch_size=batch_size, linger_ms=settings.WORKER_ACK_LINGER_MS
    )
    return loop.run(len(events))


def bench_postgres_upserts(*, events: list[OrderEvent], batch_size: int) -> BenchRun:
    """The raw rate of the worker's upsert statement: one transaction per batch of rows."""
    now = utc_now()
    states = [
        order_event_decide(stored=None, event=e, processed_at=now).state
        for e in events
        if e.status == "created"
    ]
    started = time.perf_counter()
    for index in range(0, len(states), batch_size):
        with transaction.atomic(using=DB_ALIAS):
            with connections[DB_ALIAS].cursor() as cursor:
                batch_write(cursor.cursor, states[index : index + batch_size], [], now)
    elapsed = time.perf_counter() - started
    return BenchRun("postgres_upsert", len(states), elapsed, -(-len(states) // batch_size))


def _decided_batches(events: list[OrderEvent], batch_size: int) -> list[tuple[list, list]]:
    """Per batch of `batch_size` events: the order states to upsert (the last state of each
    order, as the worker collapses them) and the events' results, decided beforehand."""
    now = utc_now()
    batches = []
    for index in range(0, len(events), batch_size):
        states, results = {}, []
        for event in events[index : index + batch_size]:
            decision = order_event_decide(
                stored=states.get(event.order_id), event=event, processed_at=now
            )
            states[event.order_id] = decision.state
            results.append(EventResult(event, decision.ack_status, decision.state))
        batches.append((list(states.values()), results))
    return batches


def bench_postgres_writes(*, events: list[OrderEvent], batch_size: int) -> BenchRun:
    """P: the raw rate, in events/s, of the worker's own writes: per batch, one transaction
    upserting the batch's orders and recording its events in one statement (`batch_write`),
    with the rules' decisions made before the clock starts."""
    batches = _decided_batches(events, batch_size)
    now = utc_now()
    started = time.perf_counter()
    for states, results in batches:
        with transaction.atomic(using=DB_ALIAS):
            with connections[DB_ALIAS].cursor() as cursor:
                batch_write(cursor.cursor, states, _events_to_record(results), now)
    elapsed = time.perf_counter() - started
    return BenchRun("postgres_writes", len(events), elapsed, len(batches))


def bench_cleanup_redis(events: list[OrderEvent]) -> None:
    client = get_redis_connection("default")
    keys = list({OrderResult.redis_key(e.order_id) for e in events})
    for index in range(0, len(keys), 1000):
        client.delete(*keys[index : index + 1000])


# The measurements taken in every round, in the first round's order; each round starts one
# further along (W K P, K P W, P W K), so none is always measured first or last.
ROUND_PARTS = ("batched", "kafka_only", "postgres_writes")


def _round_run(part: str, *, events: int, batch_size: int, drained: list) -> BenchRun:
    """One measurement of `part` on fresh events (the batched ones kept in `drained` for
    the Redis cleanup)."""
    fresh = bench_events(events)
    if part == "batched":
        drained += fresh
        return bench_drain(
            name="batched", worker_class=BenchOrderWorker, events=fresh, batch_size=batch_size
        )
    if part == "kafka_only":
        return bench_kafka_only(events=fresh, batch_size=batch_size)
    return bench_postgres_writes(events=fresh, batch_size=batch_size)


def round_order(index: int) -> tuple[str, ...]:
    """The parts of round `index` in the order they are measured."""
    start = index % len(ROUND_PARTS)
    return ROUND_PARTS[start:] + ROUND_PARTS[:start]


def median_run(runs: list[BenchRun]) -> BenchRun:
    """The run with the median rate (of an even number, the faster of the middle two)."""
    return sorted(runs, key=lambda run: run.per_second)[len(runs) // 2]


def bench_worker_run(
    *,
    events: int,
    naive_events: int,
    batch_size: int,
    database: str,
    json_path: str | None,
    rounds: int = targets.WORKER_ROUNDS,
) -> dict:
    """The whole benchmark; returns (and optionally writes) the figures.

    The batched worker, K and P are measured `rounds` times, interleaved (see
    ROUND_PARTS), and each reports its median run: measured once each, a few seconds
    apart, one of them caught a slow moment of the machine and moved the ratio by a
    quarter. The naive design and the upsert statement alone are measured once.
    """
    bench_database_use(name=database)
    naive_list = bench_events(naive_events)
    pg_events = bench_events(events)
    drained: list[OrderEvent] = []
    measured: dict[str, list[BenchRun]] = {part: [] for part in ROUND_PARTS}
    try:
        for index in range(rounds):
            for part in round_order(index):
                measured[part].append(
                    _round_run(part, events=events, batch_size=batch_size, drained=drained)
                )
        naive = bench_drain(
            name="naive",
            worker_class=NaiveOrderWorker,
            events=naive_list,
            batch_size=min(batch_size, NAIVE_POLL_RECORDS),
        )
        upserts = bench_postgres_upserts(events=pg_events, batch_size=batch_size)
    finally:
        bench_cleanup_redis(drained + naive_list + pg_events)
    batched, kafka_only, writes = (median_run(measured[part]) for part in ROUND_PARTS)
    ceiling = targets.worker_ceiling(kafka_only.per_second, writes.per_second)
    report = {
        "measured_at": rfc3339(utc_now()),
        "cpu_count": os.cpu_count(),
        "batch_size": batch_size,
        "brokers": settings.KAFKA_BROKERS,
        "database": database,
        "rounds": rounds,
        "batched": batched.as_dict(),
        "naive": naive.as_dict(),
        "naive_poll_records": min(batch_size, NAIVE_POLL_RECORDS),
        "kafka_only": kafka_only.as_dict(),
        "postgres_upsert": upserts.as_dict(),
        "postgres_writes": writes.as_dict(),
        "rounds_events_per_s": {
            part: [round(run.per_second, 1) for run in runs] for part, runs in measured.items()
        },
        "ceiling_events_per_s": round(ceiling, 1),
        "ratios": {
            "batched_over_naive": targets.ratio(batched.per_second, naive.per_second, 2),
            "batched_over_postgres_upsert": targets.ratio(batched.per_second, upserts.per_second),
            "batched_over_ceiling": targets.ratio(batched.per_second, ceiling),
        },
        "meets_target": (batched.per_second / ceiling >= targets.TARGET_WORKER)
        if ceiling
        else None,
        "rebalances_in_runs": naive.rebalances
        + sum(run.rebalances or 0 for part in ("batched", "kafka_only") for run in measured[part]),
    }
    if json_path:
        with open(json_path, "w") as handle:
            json.dump(report, handle, indent=2)
    return report


def bench_group_settings() -> None:
    """Group timings for a throwaway broker: Tansu's group join waits in proportion to the
    poll interval; 6 s is Apache Kafka's smallest session timeout."""
    settings.KAFKA_MAX_POLL_INTERVAL_MS = 6000
    settings.KAFKA_SESSION_TIMEOUT_MS = 6000
    settings.KAFKA_HEARTBEAT_INTERVAL_MS = 300


def format_worker_table(report: dict) -> str:
    """The worker part of a report as text lines."""
    lines = [
        f"{'worker':>16}  {'events':>6} {'seconds':>8} {'events/s':>10} {'batches':>8} rebalances"
    ]
    for name in ("batched", "naive", "kafka_only", "postgres_writes", "postgres_upsert"):
        run = report[name]
        rebalances = (
            "-"
            if run["rebalances"] is None
            else f"{run['rebalances']} ({run['rebalances_at_join']} at the join)"
        )
        lines.append(
            f"{name:>16}: {run['events']:>6} {run['seconds']:>8.2f} {run['events_per_s']:>10.1f} "
            f"{run['batches']:>8} {rebalances}"
        )
    ratios = report["ratios"]
    met = {True: "met", False: "MISSED", None: "-"}[report["meets_target"]]
    lines += [
        "K = kafka_only, P = postgres_writes (events/s; postgres_upsert counts order rows)",
        f"ceiling 1/(1/K + 1/P) = {report['ceiling_events_per_s']}/s; batched / ceiling = "
        f"{ratios['batched_over_ceiling']} (target >= {targets.TARGET_WORKER}: {met})",
        f"medians of {report['rounds']} interleaved rounds: "
        + "; ".join(
            f"{part} {', '.join(f'{rate:.0f}' for rate in rates)}"
            for part, rates in report["rounds_events_per_s"].items()
        ),
        f"batched / naive = {ratios['batched_over_naive']}x; batched / PostgreSQL upsert = "
        f"{ratios['batched_over_postgres_upsert']}; naive polls {report['naive_poll_records']} "
        "at a time",
    ]
    return "\n".join(lines) + "\n"
