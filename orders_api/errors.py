"""What a write can run into, in the domain's words (no HTTP here).

Services raise these; the one exception handler (`exceptions.exception_handler`) maps each
kind to its HTTP status and answers in the one error shape, naming `field` and `reason`.
Input that is simply invalid (a bad uuid, an amount that cannot be computed) is no domain
error: it stays an `ApplicationError` or a serializer's ValidationError (400).
"""

from __future__ import annotations

import uuid


class OrderError(Exception):
    """Something the domain refuses: the part of the request at fault and why."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class OrderNotFound(OrderError):
    """No such order (for this user: another user's order is not found either)."""


class OrderDeleted(OrderError):
    """The order is soft-deleted: it cannot be changed any more."""

    def __init__(self):
        super().__init__("order_id", "the order is deleted and cannot be changed")


class EventTooLarge(OrderError):
    """The order's event would exceed the effective limit (`event_limit`): the broker
    could never take it."""

    def __init__(self, size: int, limit: int):
        reason = f"the order's event would be {size} bytes, more than the limit of {limit}"
        super().__init__("payload", reason)


class IdempotencyKeyReused(OrderError):
    """An Idempotency-Key of this user already answers a different request."""

    def __init__(self, header: str):
        super().__init__(header, "was already used with a different request; use a new key")


class OrderRejected(OrderError):
    """The worker refused the order (its ACK says `rejected`); the order is stored."""

    def __init__(self, *, order_id: uuid.UUID, reason: str, replayed: bool):
        super().__init__("payload", reason)
        self.order_id = order_id
        self.replayed = replayed
