"""The worker benchmark: drain N events with the batched worker, with the naive per-event
design, and measure the raw PostgreSQL upsert rate, all in one run.

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

from orderstream.kafka import ensure_topics, make_producer
from orderstream.messages import OrderEvent, OrderResult
from orderstream.timestamps import rfc3339, utc_now

from .consumer import OrderWorker, WorkerConfig
from .rules import order_event_decide
from .services import DB_ALIAS, _upsert_orders

logger = logging.getLogger(__name__)


class NaiveOrderWorker(OrderWorker):
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

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "events_per_s": round(self.per_second, 1),
            "batches": self.batches,
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


def bench_drain(*, name: str, worker_class: type[OrderWorker], events, batch_size: int) -> BenchRun:
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
    return BenchRun(name, handled, stats.last_batch_at - stats.first_batch_at, stats.batches)


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
                _upsert_orders(cursor.cursor, states[index : index + batch_size])
    elapsed = time.perf_counter() - started
    return BenchRun("postgres_upsert", len(states), elapsed, -(-len(states) // batch_size))


def bench_cleanup_redis(events: list[OrderEvent]) -> None:
    client = get_redis_connection("default")
    keys = list({OrderResult.redis_key(e.order_id) for e in events})
    for index in range(0, len(keys), 1000):
        client.delete(*keys[index : index + 1000])


def bench_worker_run(
    *, events: int, naive_events: int, batch_size: int, database: str, json_path: str | None
) -> dict:
    """The whole benchmark; returns (and optionally writes) the figures."""
    bench_database_use(name=database)
    batched_events = bench_events(events)
    naive_list = bench_events(naive_events)
    pg_events = bench_events(events)
    try:
        batched = bench_drain(
            name="batched", worker_class=OrderWorker, events=batched_events, batch_size=batch_size
        )
        naive = bench_drain(
            name="naive", worker_class=NaiveOrderWorker, events=naive_list, batch_size=batch_size
        )
        upserts = bench_postgres_upserts(events=pg_events, batch_size=batch_size)
    finally:
        bench_cleanup_redis(batched_events + naive_list + pg_events)
    report = {
        "measured_at": rfc3339(utc_now()),
        "cpu_count": os.cpu_count(),
        "batch_size": batch_size,
        "brokers": settings.KAFKA_BROKERS,
        "database": database,
        "batched": batched.as_dict(),
        "naive": naive.as_dict(),
        "postgres_upsert": upserts.as_dict(),
        "ratios": {
            "batched_over_naive": round(batched.per_second / naive.per_second, 2),
            "batched_over_postgres_upsert": round(batched.per_second / upserts.per_second, 3),
        },
    }
    if json_path:
        with open(json_path, "w") as handle:
            json.dump(report, handle, indent=2)
    return report
