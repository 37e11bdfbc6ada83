"""Time limits on the relay process's PostgreSQL sessions (`manage.py run_relay`).

A relay pass holds its outbox rows locked (FOR UPDATE) while it waits for the broker. A
relay whose host is lost, or whose process freezes, in the middle of a pass would keep
them locked until TCP keepalive gives up on it (about two hours by default), and those
orders' events would wait for every other relay. On the relay process's sessions,
PostgreSQL itself ends:

- a transaction idle for RELAY_DB_IDLE_IN_TRANSACTION_TIMEOUT seconds (the session is
  closed, its locks released: another relay's next pass takes the rows);
- a statement running for RELAY_DB_STATEMENT_TIMEOUT seconds;
- a wait for a lock longer than RELAY_DB_LOCK_TIMEOUT seconds.

A relay that comes back finds its session gone at its next statement: the pass fails
(logged), the relay connects again and goes on; what it had sent is sent again by
whichever relay takes the rows (the worker applies each event once).

Every connection the process opens to the API database gets the limits, as it is opened
(Django's `connection_created`): the relay's, the ACK recorder's and the metrics'. The
API processes are not limited.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.conf import settings
from django.db.backends.signals import connection_created

ALIAS = "default"
DISPATCH_UID = "orders_api.relay.sessions"  # one receiver, however often entered


def relay_session_parameters() -> dict[str, str]:
    """PostgreSQL's parameter names and their values in milliseconds (`0`: no limit)."""
    seconds = {
        "idle_in_transaction_session_timeout": settings.RELAY_DB_IDLE_IN_TRANSACTION_TIMEOUT,
        "statement_timeout": settings.RELAY_DB_STATEMENT_TIMEOUT,
        "lock_timeout": settings.RELAY_DB_LOCK_TIMEOUT,
    }
    return {name: str(round(value * 1000)) for name, value in seconds.items()}


def session_limits_set(*, connection) -> None:
    """Set the relay's limits on the session of `connection` (one round trip)."""
    parameters = relay_session_parameters()
    calls = ", ".join(["set_config(%s, %s, false)"] * len(parameters))
    values = [item for pair in parameters.items() for item in pair]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {calls}", values)


def _limit_new_session(sender, connection, **kwargs) -> None:
    if connection.alias == ALIAS:
        session_limits_set(connection=connection)


@contextlib.contextmanager
def relay_sessions_limited() -> Iterator[None]:
    """Within the block, every session this process opens to the API database is limited
    (enter it before the process connects: `run_relay` does, first thing)."""
    connection_created.connect(_limit_new_session, dispatch_uid=DISPATCH_UID)
    try:
        yield
    finally:
        connection_created.disconnect(dispatch_uid=DISPATCH_UID)
