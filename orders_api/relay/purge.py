"""Forget what is no longer needed: published outbox rows, parked rows no operator put
back in time, and expired idempotency keys.

Run by the relay (`run_relay`) every OUTBOX_PURGE_INTERVAL seconds; the API processes
never purge. Outbox rows go PURGE_BATCH at a time: each statement stays short (well within
the relay's statement timeout, `relay_sessions`) however many rows have piled up.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from orders_api.idempotency import idempotency_purge
from orders_api.models import OutboxEvent

logger = logging.getLogger(__name__)

PURGE_BATCH = 10_000


def _delete_in_batches(rows: QuerySet) -> int:
    """Delete `rows`, PURGE_BATCH per statement; return how many."""
    deleted = 0
    while True:
        count, _ = rows.model.objects.filter(pk__in=rows.values("pk")[:PURGE_BATCH]).delete()
        deleted += count
        if count < PURGE_BATCH:
            return deleted


def outbox_purge(*, older_than_seconds: int | None = None) -> int:
    """Delete published rows older than OUTBOX_RETENTION_SECONDS (or `older_than_seconds`);
    return how many."""
    seconds = (
        settings.OUTBOX_RETENTION_SECONDS if older_than_seconds is None else older_than_seconds
    )
    cutoff = timezone.now() - timedelta(seconds=seconds)
    return _delete_in_batches(
        OutboxEvent.objects.filter(published_at__isnull=False, published_at__lt=cutoff)
    )


def outbox_parked_purge() -> int:
    """Delete the rows parked more than OUTBOX_PARKED_RETENTION_SECONDS ago (0: keep them
    for good) and never put back; return how many. Their events are never published (a
    newer event of the same order, which carries its whole state, goes out as usual)."""
    seconds = settings.OUTBOX_PARKED_RETENTION_SECONDS
    if not seconds:
        return 0
    cutoff = timezone.now() - timedelta(seconds=seconds)
    return _delete_in_batches(
        OutboxEvent.objects.filter(parked_at__lt=cutoff, published_at__isnull=True)
    )


def expired_rows_purge() -> tuple[int, int, int]:
    """Purge published outbox rows, expired parked rows and expired idempotency keys;
    return the three counts."""
    purged, parked, expired = outbox_purge(), outbox_parked_purge(), idempotency_purge()
    if purged or expired:
        logger.info("purged %d published outbox row(s), %d idempotency key(s)", purged, expired)
    if parked:
        logger.warning(
            "purged %d parked outbox row(s), parked more than %ss ago: their events are not"
            " published",
            parked,
            settings.OUTBOX_PARKED_RETENTION_SECONDS,
        )
    return purged, parked, expired
