"""`Idempotency-Key` on POST /orders: a repeated key (per user) replays the first request.

The key is recorded in the same transaction as the order and its event, together with a
fingerprint of the request; a repeat with the same fingerprint gets the first request's
order and event back (no second order), a repeat with a different body is refused.
Keys expire after IDEMPOTENCY_KEY_TTL_SECONDS (purged by the outbox relay).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from orders_api.errors import IdempotencyKeyReused
from orders_api.exceptions import ApplicationError
from orders_api.models import IdempotencyKey

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Printable ASCII (space to tilde), surrounding spaces trimmed. HTTP header values are bytes
# that servers hand over as Latin-1 text: any other character would depend on how the
# client encoded it (UTF-8 "é" arrives as "Ã©"), so the same key could differ.
KEY_PATTERN = re.compile(r"[ -~]+")
KEY_RULE = f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters (space to ~)"


def idempotency_key_clean(raw: str | None) -> str | None:
    """The header's value, or None when absent; 400 when empty, too long or not printable
    ASCII."""
    if raw is None:
        return None
    key = raw.strip(" ")
    if not key or len(key) > MAX_KEY_LENGTH or not KEY_PATTERN.fullmatch(key):
        raise ApplicationError(HEADER, KEY_RULE)
    return key


def request_fingerprint(
    *, user_id: uuid.UUID, order_id: uuid.UUID | None, payload: dict | None, delete: bool
) -> str:
    """A hash of what the request asks for, to tell a retry from a different request."""
    canonical = json.dumps(
        [str(user_id), str(order_id or ""), payload, delete],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_find(*, user_id: uuid.UUID, key: str, fingerprint: str) -> IdempotencyKey | None:
    """The unexpired record of `key` for this user; IdempotencyKeyReused when it was used
    for another request."""
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    record = IdempotencyKey.objects.filter(user_id=user_id, key=key, created_at__gte=cutoff).first()
    if record is not None and record.fingerprint != fingerprint:
        raise IdempotencyKeyReused(HEADER)
    return record


def idempotency_record_build(
    *,
    user_id: uuid.UUID,
    key: str,
    fingerprint: str,
    order_id: uuid.UUID,
    event_id: str,
    operation: str,
) -> IdempotencyKey:
    """The record of `key` (not saved), after deleting expired records of the same key.

    Save it in the transaction (or statement) that writes the order: a concurrent request
    with the same key then blocks on the unique index until that commits and fails with
    IntegrityError, which the caller turns into a replay.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    IdempotencyKey.objects.filter(user_id=user_id, key=key, created_at__lt=cutoff).delete()
    return IdempotencyKey(
        user_id=user_id,
        key=key,
        fingerprint=fingerprint,
        order_id=order_id,
        event_id=event_id,
        operation=operation,
        created_at=timezone.now(),
    )


def is_key_conflict(exc: IntegrityError) -> bool:
    return "idempotency_user_key_uniq" in str(exc)


def idempotency_purge() -> int:
    """Delete expired keys; return how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
