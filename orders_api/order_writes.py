"""POST /orders from the write to its outcome: the worker's ACK, waited for within a budget.

`order_write` writes the order (`services.order_upsert`) and tells what became of it: the
status of the worker's ACK when it came within the wait budget, the status already known
for a replayed request, else "pending" (the order and its event are committed and will be
processed). Only a listener positioned before the write is sure to see its ACK, so a write
waits at most ACK_LISTENER_READY_WAIT for this process's listener (it is not positioned
only before its first read, or while no broker answers) and without one it does not wait.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from orderstream.log_format import log_fields
from orderstream.messages import OrderAck
from orderstream.statuses import PENDING, AckStatus

from . import runtime
from .acks import AckListener
from .errors import OrderRejected
from .metrics import ack_wait_counted
from .selectors import order_event_applied
from .services import OrderWrite, order_upsert

logger = logging.getLogger(__name__)

# Longest a waiting write waits for this process's ACK listener to be positioned.
ACK_LISTENER_READY_WAIT = 1.0


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What a client is told about its write: the order and what became of it."""

    order_id: uuid.UUID
    status: str  # created, updated or deleted (the worker applied it), or pending
    replayed: bool  # the Idempotency-Key answers an earlier request: nothing was written

    @property
    def pending(self) -> bool:
        return self.status == PENDING


def order_write(
    *,
    user_id: uuid.UUID,
    order_id: uuid.UUID | None,
    payload: dict | None,
    delete: bool = False,
    idempotency_key: str | None,
    wait_seconds: float,
) -> WriteOutcome:
    """Create, update or soft-delete an order (see `order_upsert`) and wait up to
    `wait_seconds` (0: not at all) for the worker's ACK.

    Raises what `order_upsert` raises, and OrderRejected when the worker's ACK rejects the
    order (which is stored all the same).
    """
    started = time.monotonic()
    listener = _ready_listener(wait_seconds)
    write = order_upsert(
        user_id=user_id,
        order_id=order_id,
        payload=payload,
        delete=delete,
        idempotency_key=idempotency_key,
    )
    status = _known_status(write) if write.replayed else None
    if status is None and listener is not None:
        ack = listener.wait_for(write.event_id, max(wait_seconds - (time.monotonic() - started), 0))
        ack_wait_counted("timed_out" if ack is None else "answered")
        if ack is not None:
            status = _acknowledged_status(write, ack)
    elif status is None and wait_seconds > 0:
        ack_wait_counted("no_listener")
    else:
        ack_wait_counted("not_waited")
    outcome = WriteOutcome(
        order_id=write.order_id, status=status or PENDING, replayed=write.replayed
    )
    if logger.isEnabledFor(logging.DEBUG):  # one line per request: skip the fields
        logger.debug(
            "order %s %s (event %s%s): answered %s",
            write.order_id,
            write.operation,
            write.event_id,
            ", replayed" if write.replayed else "",
            outcome.status,
            extra=log_fields(order_id=write.order_id, event_id=write.event_id),
        )
    return outcome


def _ready_listener(wait_seconds: float) -> AckListener | None:
    """This process's ACK listener once it is positioned, or None: no wait asked for, or
    the listener not ready within ACK_LISTENER_READY_WAIT (then the answer is pending)."""
    if wait_seconds <= 0:
        return None
    listener = runtime.ack_listener()
    if not listener.ready.wait(min(wait_seconds, ACK_LISTENER_READY_WAIT)):
        return None
    return listener


def _known_status(write: OrderWrite) -> str | None:
    """For a replayed request: the status of its ACK if this process has seen it, else its
    operation when the worker's Redis result shows the event applied (after a restart);
    None while unknown."""
    ack = runtime.ack_listener().recent(write.event_id)
    if ack is not None:
        return _acknowledged_status(write, ack)
    if order_event_applied(order_id=write.order_id, event_id=write.event_id):
        return write.operation
    return None


def _acknowledged_status(write: OrderWrite, ack: OrderAck) -> str:
    """The status the worker's `ack` answers; OrderRejected when it rejected the order."""
    if ack.status == AckStatus.REJECTED:
        raise OrderRejected(
            order_id=write.order_id,
            reason=ack.error or "rejected by the worker",
            replayed=write.replayed,
        )
    return ack.status
