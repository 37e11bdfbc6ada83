"""A relay that stops answering mid-pass loses its rows after a timeout, not after TCP
keepalive (about 2 h): real `manage.py run_relay` processes, one frozen with SIGSTOP while
it holds a row, the other publishing that row once PostgreSQL ended the frozen session."""

from __future__ import annotations

import os
import signal
import uuid

import pytest
from django.db import connections
from django.utils import timezone

from devstack.tansu import TansuBroker
from orders_api.relay.sessions import relay_sessions_limited
from orderstream.messages import OrderEvent
from orderstream.timestamps import rfc3339
from testkit import processes
from testkit.processes import query
from testkit.scrape import scrape

OUTBOX = "orders_api_outboxevent"
IDLE_TIMEOUT = 3  # seconds: the relays' idle-in-transaction timeout in this test


def outbox_row(dbname: str, topic: str) -> int:
    """A committed outbox row (its insert notifies the relays); its id."""
    now = timezone.now()
    event = OrderEvent(
        event_id=str(uuid.uuid4()),
        order_id=str(uuid.uuid4()),
        user_id=str(uuid.uuid4()),
        payload={"amount": 1},
        status="created",
        version=1,
        timestamp=rfc3339(now),
        external_id=None,
    )
    [(row_id,)] = query(
        dbname,
        f"INSERT INTO {OUTBOX} (event_id, order_id, version, topic, value, created_at,"
        " next_attempt_at, attempts, last_error)"
        " VALUES (%s, %s, 1, %s, %s, %s, %s, 0, '') RETURNING id",
        [event.event_id, event.order_id, topic, event.to_bytes().decode(), now, now],
    )
    return row_id


def holding_a_pass(dbname: str) -> bool:
    """Whether a session is idle inside a transaction that locked outbox rows (FOR UPDATE):
    a relay waiting for the broker in the middle of a pass."""
    return bool(
        query(
            dbname,
            "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE a.datname = %s AND a.state = 'idle in transaction'"
            " AND l.relation = %s::regclass AND l.mode = 'RowShareLock' AND l.granted",
            [dbname, OUTBOX],
        )
    )


def skipped_as_locked(dbname: str, row_id: int) -> bool:
    """Whether another session holds the row (a relay's SKIP LOCKED would not see it)."""
    found = query(dbname, f"SELECT id FROM {OUTBOX} WHERE id = %s FOR UPDATE SKIP LOCKED", [row_id])
    return not found


def published(dbname: str, row_id: int) -> bool:
    return bool(query(dbname, f"SELECT published_at FROM {OUTBOX} WHERE id = %s", [row_id])[0][0])


def made_a_pass(relay: processes.Launched) -> bool:
    """Whether the relay made a pass that did not fail (so it has its producer)."""
    metrics = processes.http_get(f"http://127.0.0.1:{relay.metrics_port}/metrics")
    if metrics is None:
        return False
    page = scrape(f"http://127.0.0.1:{relay.metrics_port}/metrics")
    passes = page.value("orderstream_relay_passes_total")
    return passes > page.value("orderstream_relay_failed_passes_total")


@pytest.mark.django_db(databases=["default", "worker"])
def test_every_new_session_of_the_relay_process_to_the_api_database_is_limited(settings):
    settings.RELAY_DB_IDLE_IN_TRANSACTION_TIMEOUT = 3
    settings.RELAY_DB_STATEMENT_TIMEOUT = 4.5
    settings.RELAY_DB_LOCK_TIMEOUT = 0
    names = ("idle_in_transaction_session_timeout", "statement_timeout", "lock_timeout")
    sql = "SELECT " + ", ".join(f"current_setting('{name}')" for name in names)

    def limits(alias: str) -> tuple:
        session = connections.create_connection(alias)  # a new session, as a thread opens
        try:
            with session.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchone()
        finally:
            session.close()

    with relay_sessions_limited():
        assert limits("default") == ("3s", "4500ms", "0")
        assert limits("worker") == ("0", "0", "0")  # PostgreSQL's defaults: not the API's
    assert limits("default") == ("0", "0", "0")


@pytest.mark.processes
@pytest.mark.broker
@pytest.mark.db
def test_a_relay_frozen_mid_pass_loses_its_rows_to_another_relay_after_the_timeout(
    unique_topics, tmp_path
):
    timeouts = {"RELAY_DB_IDLE_IN_TRANSACTION_TIMEOUT": str(IDLE_TIMEOUT)}
    silent = TansuBroker(log_path=str(tmp_path / "silent-broker.log")).start()
    try:
        with (
            processes.scratch_databases("orderstream_relay_sessions") as scratch,
            processes.Deployment(scratch, unique_topics, tmp_path) as deployment,
        ):
            api_db = scratch["default"]
            deployment.migrate_database("default")
            # The first relay publishes to a broker that will stop answering: its pass then
            # waits for the broker (up to a minute) with its rows locked.
            frozen = deployment.start_relay(
                KAFKA_BROKERS=silent.bootstrap, OUTBOX_PUBLISH_TIMEOUT="60", **timeouts
            )
            processes.wait_until(lambda: made_a_pass(frozen), 60, "a first pass", frozen)
            os.kill(silent.process.pid, signal.SIGSTOP)
            row = outbox_row(api_db, unique_topics.ORDERS_EVENTS_TOPIC)
            processes.wait_until(lambda: holding_a_pass(api_db), 30, "the row held", frozen)
            os.kill(frozen.process.pid, signal.SIGSTOP)  # a relay host lost mid-pass
            try:
                assert skipped_as_locked(api_db, row)
                assert not published(api_db, row)
                other = deployment.start_relay(**timeouts)
                processes.wait_until(
                    lambda: published(api_db, row), 30 + IDLE_TIMEOUT, "the other relay", other
                )
            finally:
                os.kill(frozen.process.pid, signal.SIGCONT)
                os.kill(silent.process.pid, signal.SIGCONT)
            # Woken again, the first relay finds its session gone, says so and goes on.
            processes.wait_until(
                lambda: "outbox relay pass failed" in frozen.log_path.read_text(errors="replace"),
                90,
                "the first relay to notice its lost session",
                frozen,
            )
            frozen.assert_running()
    finally:
        silent.stop()
