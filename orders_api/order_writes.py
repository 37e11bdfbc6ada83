"""POST /orders from the write to its outcome: the worker's ACK, waited for within a budget.

`order_write` writes the order (`services.order_upsert`) and tells what became of it: the
status of the worker's ACK when it came within the wait budget, the status already known
for a replayed request, else "pending" (the order and its event are committed and will be
processed). Whether it may wait at all is the process's `AckWaitGate`'s to say (a few
waiters at a time, none while the pipeline is behind): the slot is taken before the write,
since only a listener positioned before the write is sure to see its ACK.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from orders_api.ack_wait import process_listener
from orders_api.ack_wait.gate import BUSY, LISTENER_NOT_READY, PIPELINE_BEHIND, ack_wait_gate
from orders_api.errors import OrderRejected
from orders_api.metrics import ack_wait_counted
from orders_api.selectors import order_event_applied
from orders_api.services import OrderWrite, order_upsert
from orderstream.log_format import log_fields
from orderstream.messages import OrderAck
from orderstream.statuses import PENDING, AckStatus
from orderstream.timestamps import utc_now

logger = logging.getLogger(__name__)

# The `orderstream_ack_waits_total` outcome of each reason the gate gives for no wait.
SKIPPED_OUTCOMES = {
    BUSY: "busy",
    PIPELINE_BEHIND: "pipeline_behind",
    LISTENER_NOT_READY: "no_listener",
}


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What a client is told about its write: the order and what became of it."""

    order_id: uuid.UUID
    status: str  # created, updated or deleted (the worker applied it), or pending
    replayed: bool  # the Idempotency-Key answers an earlier request: nothing was written
    wait_skipped: str | None = None  # why a wait asked for was not done (ack_wait_gate)

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
    began_at = utc_now()  # before the write: its event is published later
    gate = ack_wait_gate()
    with gate.slot(wait_seconds) as slot:
        write = order_upsert(
            user_id=user_id,
            order_id=order_id,
            payload=payload,
            delete=delete,
            idempotency_key=idempotency_key,
        )
        status = _known_status(write) if write.replayed else None
        if status is not None or wait_seconds <= 0:
            ack_wait_counted("not_waited")
        elif slot.listener is None:
            ack_wait_counted(SKIPPED_OUTCOMES[slot.skipped])
        else:
            remaining = max(wait_seconds - (time.monotonic() - started), 0)
            ack = gate.wait_for(
                slot, write.event_id, remaining, order_id=str(write.order_id), began_at=began_at
            )
            ack_wait_counted("timed_out" if ack is None else "answered")
            if ack is not None:
                status = _acknowledged_status(write, ack)
    outcome = WriteOutcome(
        order_id=write.order_id,
        status=status or PENDING,
        replayed=write.replayed,
        wait_skipped=slot.skipped if status is None else None,
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


def _known_status(write: OrderWrite) -> str | None:
    """For a replayed request: the status of its ACK if this process has seen it, else its
    operation when the worker's Redis result shows the event applied (after a restart);
    None while unknown."""
    ack = process_listener.ack_listener().recent(write.event_id)
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
