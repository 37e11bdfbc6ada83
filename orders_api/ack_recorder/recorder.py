"""The ACK recorder: what the worker did with each order, recorded in the API database.

It reads `orders.ack` in a consumer group of its own (ACK_RECORDER_GROUP), so every ACK is
recorded once whatever the number of relays, and writes each order's outcome to the
columns `outcome`, `outcome_version`, `outcome_reason` and `applied_version` of its row
(`ack_outcomes.py` says which outcome wins; GET derives `processing` from them). It runs
beside the outbox relay, in a thread of `manage.py run_relay`.

Per poll it merges the batch's ACKs per order and writes them in one UPDATE whose guard
keeps the newer outcome, so an older or repeated ACK never moves an order backwards; the
offsets are committed after that UPDATE. The loop is the Kafka layer's batch loop
(`orderstream.kafka.batch_loop`), as the worker's: a database outage is retried with
backoff, never skipped, and a stop request abandons a batch that waits on a retry,
uncommitted. An ACK that cannot be read or recorded (not JSON, no uuid, no version to
place it) is skipped with a log line: it never stalls the loop.

ACKs of workers that predate the ACK's `version` are placed by the version of their
event's outbox row, while that row is kept (OUTBOX_RETENTION_SECONDS). ACKs of the Go
original's worker, which carry neither event id nor version, are placed by the order's
latest published version (its newest outbox row the relay published).

This is not the ACK listener of `ack_wait/listener.py`, which every API process runs to answer a
waiting POST.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import DataError, IntegrityError, connections
from django.db.models import Max
from psycopg2.extras import execute_values

from orders_api.ack_outcomes import OUTCOME_RANK, Recorded, outcome_of_ack, recorded_merge
from orders_api.models import Order, OutboxEvent
from orderstream.kafka import one_fetch_timeout_ms
from orderstream.kafka.batch_loop import BatchLoop, BatchOutcome, LoopConfig, Retry
from orderstream.kafka.loop_metrics import LoopMetrics
from orderstream.messages import InvalidMessage, OrderAck

logger = logging.getLogger(__name__)

DB_ALIAS = "default"
# The `version` columns are PostgreSQL integers: no order of the API has a larger one.
MAX_VERSION = 2**31 - 1
# A rejection's reason is stored up to this many characters (the worker bounds it too).
MAX_REASON_CHARS = 1000
# Seconds a stopping process waits for the recorder's thread (a batch waiting on a retry
# is abandoned at once; a batch under way finishes first).
JOIN_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class AckRead:
    """One ACK as the recorder uses it; `version` None until looked up in the outbox."""

    order_id: str
    event_id: str | None
    status: str
    version: int | None
    error: str | None


class AckDataRefused(Exception):
    """PostgreSQL refused a value of the batch: retrying cannot help (the loop records the
    ACKs one at a time, and skips the one refused alone)."""


def _storable_text(text: str) -> str:
    """`text` as PostgreSQL text can hold it: no NUL, no unpaired surrogate, bounded."""
    text = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return text[:MAX_REASON_CHARS]


def ack_read(record) -> AckRead | None:
    """The record's ACK, or None (logged) when it is none the recorder can place."""
    try:
        ack = OrderAck.from_bytes(record.value)
        order_id = str(uuid.UUID(ack.order_id or ""))
        event_id = str(uuid.UUID(ack.event_id)) if ack.event_id else None
        if ack.version is not None and ack.version > MAX_VERSION:
            raise InvalidMessage(f"version: larger than {MAX_VERSION}")
    except (InvalidMessage, RecursionError, TypeError, ValueError) as exc:
        _skipped(record, exc)
        return None
    error = _storable_text(ack.error) if ack.error else None
    return AckRead(order_id, event_id, ack.status, ack.version, error)


def _skipped(record, reason) -> None:
    logger.warning(
        "ACK recorder: skipping the ACK at %s[%d]@%d key=%r: %s",
        record.topic,
        record.partition,
        record.offset,
        record.key,
        reason,
    )


def _latest_published_versions(order_ids: set[str]) -> dict[str, int]:
    """Order id -> the version of its newest published outbox row, for `order_ids`."""
    if not order_ids:
        return {}
    rows = (
        OutboxEvent.objects.using(DB_ALIAS)
        .filter(order_id__in=order_ids, published_at__isnull=False)
        .values("order_id")
        .annotate(latest=Max("version"))
        .values_list("order_id", "latest")
    )
    return {str(order_id): latest for order_id, latest in rows}


def _versions_from_outbox(acks: list[AckRead]) -> list[AckRead]:
    """`acks` with a version each: the ACK's own, else its event's outbox row's, else (an
    ACK without event id: the Go original's) its order's latest published version; an ACK
    with none is left out (logged)."""
    missing = {ack.event_id for ack in acks if ack.version is None and ack.event_id}
    versions = {}
    if missing:
        versions = {
            str(event_id): version
            for event_id, version in OutboxEvent.objects.using(DB_ALIAS)
            .filter(event_id__in=missing)
            .values_list("event_id", "version")
        }
    latest = _latest_published_versions(
        {ack.order_id for ack in acks if ack.version is None and not ack.event_id}
    )
    placed = []
    for ack in acks:
        if ack.version is not None:
            version = ack.version
        elif ack.event_id:
            version = versions.get(ack.event_id)
        else:
            version = latest.get(ack.order_id)
        if version is None:
            logger.warning(
                "ACK recorder: no version for the ACK of event %s (order %s): skipped",
                ack.event_id,
                ack.order_id,
            )
            continue
        placed.append(AckRead(ack.order_id, ack.event_id, ack.status, version, ack.error))
    return placed


def acks_merge(acks: Iterable[AckRead]) -> dict[str, Recorded]:
    """What the ACKs say per order (each with a version), merged (`ack_outcomes.py`)."""
    merged: dict[str, Recorded] = {}
    for ack in acks:
        outcome = outcome_of_ack(status=ack.status, version=ack.version, error=ack.error)
        merged[ack.order_id] = recorded_merge(
            recorded=merged.get(ack.order_id, Recorded()), outcome=outcome
        )
    return merged


def _rank_sql(column: str) -> str:
    cases = " ".join(f"WHEN '{outcome}' THEN {rank}" for outcome, rank in OUTCOME_RANK.items())
    return f"(CASE {column} {cases} ELSE -1 END)"


def _update_sql() -> str:
    """One UPDATE for many orders: each row takes the new outcome when it is newer
    (`processing.Outcome.order_key`, reasons compared byte-wise as Python compares them)
    and the higher applied version; rows where neither is new are left alone."""
    table = Order._meta.db_table
    newer = (
        "(o.outcome_version IS NULL OR "
        f'(o.outcome_version, {_rank_sql("o.outcome")}, o.outcome_reason COLLATE "C") < '
        f'(v.version, {_rank_sql("v.outcome")}, v.reason COLLATE "C"))'
    )
    return (
        f"UPDATE {table} AS o SET "
        f"outcome = CASE WHEN {newer} THEN v.outcome ELSE o.outcome END, "
        f"outcome_reason = CASE WHEN {newer} THEN v.reason ELSE o.outcome_reason END, "
        f"outcome_version = CASE WHEN {newer} THEN v.version ELSE o.outcome_version END, "
        "applied_version = GREATEST(o.applied_version, v.applied_version) "
        "FROM (VALUES %s) AS v(order_id, version, outcome, reason, applied_version) "
        "WHERE o.order_id = v.order_id AND "
        f"({newer} OR v.applied_version > COALESCE(o.applied_version, 0))"
    )


def order_outcomes_record(*, recorded: dict[str, Recorded]) -> int:
    """Record each order's merged ACKs on its row (unknown orders are ignored); return the
    number of rows changed. Raises `AckDataRefused` when PostgreSQL refuses a value."""
    rows = [
        (order_id, r.outcome.version, r.outcome.outcome, r.outcome.reason, r.applied_version)
        for order_id, r in sorted(recorded.items())  # one lock order for every recorder
        if r.outcome is not None
    ]
    if not rows:
        return 0
    connection = connections[DB_ALIAS]
    template = "(%s::uuid, %s::integer, %s::text, %s::text, %s::integer)"
    try:
        with connection.cursor() as cursor, connection.wrap_database_errors:
            execute_values(
                cursor.cursor, _update_sql(), rows, template=template, page_size=len(rows)
            )
            return cursor.cursor.rowcount
    except (DataError, IntegrityError) as exc:
        raise AckDataRefused(str(exc).strip()) from exc


def order_outcomes_record_acks(*, acks: list[AckRead]) -> int:
    """Place the ACKs that lack a version (outbox), merge them and record them."""
    return order_outcomes_record(recorded=acks_merge(_versions_from_outbox(acks)))


class AckOutcomesHandler:
    """The `batch_loop.BatchHandler` of the recorder: it produces nothing."""

    def handle(self, records: list, retry: Retry) -> BatchOutcome:
        acks = [ack for record in records if (ack := ack_read(record)) is not None]
        if acks:
            retry("record ACK outcomes", lambda: order_outcomes_record_acks(acks=acks))
        return BatchOutcome()

    def reject(self, record, error: Exception, retry: Retry) -> BatchOutcome:
        """Skip an ACK that failed alone (logged with its coordinates)."""
        logger.error(
            "ACK recorder: the ACK at %s[%d]@%d key=%r could not be recorded: skipped",
            record.topic,
            record.partition,
            record.offset,
            record.key,
            exc_info=error,
        )
        return BatchOutcome()

    def periodic(self) -> None:
        """Nothing to tidy: the rows are the orders'."""


@functools.cache
def ack_recorder_metrics() -> LoopMetrics:
    """The recorder's counters, on the relay's metrics port, made on first use: its loop is
    the worker's, its counters are not."""
    return LoopMetrics(
        subject="the ACK recorder",
        batch_size="orderstream_ack_recorder_batch_size",
        retries="orderstream_ack_recorder_retries",
        errors="orderstream_ack_recorder_errors",
    )


@dataclass(frozen=True, kw_only=True)
class AckRecorderConfig(LoopConfig):
    """The batch loop's settings for the recorder; `from_settings` fills them."""

    @classmethod
    def from_settings(cls, **overrides) -> AckRecorderConfig:
        """The settings' values; `overrides` that are not None win."""
        values = {
            "name": "ACK recorder",
            "events_topic": settings.ORDERS_ACK_TOPIC,
            "group": settings.ACK_RECORDER_GROUP,
            "batch_size": settings.ACK_RECORDER_BATCH_SIZE,
            "max_poll_interval_ms": settings.KAFKA_MAX_POLL_INTERVAL_MS,
            "idle_poll_ms": settings.ACK_RECORDER_IDLE_POLL_MS,
            "idle_poll_timeout_ms": one_fetch_timeout_ms(),
            # Several relays may run, more than the ACK topic has partitions: a recorder
            # without partitions is no fault.
            "unassigned_max_seconds": 0,
            "client_id": "orderstream-ack-recorder",
            "database": DB_ALIAS,
            "metrics": ack_recorder_metrics(),
            "produces": False,  # its handler answers with no records
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class AckRecorder(BatchLoop):
    """The recorder's loop: `run()` until `stop()`; it builds no producer (its config's
    `produces` is False)."""

    def __init__(self, config: AckRecorderConfig | None = None):
        super().__init__(config or AckRecorderConfig.from_settings(), AckOutcomesHandler())


@contextlib.contextmanager
def ack_recorder_beside(main_stop: Callable[[], None]) -> Iterator[AckRecorder]:
    """An `AckRecorder` running in a thread of its own while the block runs (the relay's
    loop, in `run_relay`); stopped and joined when the block ends. Should the recorder
    crash, `main_stop` is called, so the process ends and its manager restarts it
    instead of running on without recording; the crash is raised after the block."""
    recorder = AckRecorder()
    crashed: list[BaseException] = []

    def run() -> None:
        try:
            recorder.run()
        except BaseException as exc:
            logger.exception("ACK recorder crashed; stopping the process")
            crashed.append(exc)
            main_stop()

    thread = threading.Thread(target=run, name="ack-recorder", daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        recorder.stop()
        thread.join(timeout=JOIN_TIMEOUT)
        if thread.is_alive():
            logger.warning("ACK recorder did not stop within %ss", JOIN_TIMEOUT)
    if crashed:
        raise RuntimeError("the ACK recorder crashed") from crashed[0]
