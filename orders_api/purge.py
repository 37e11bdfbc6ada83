"""Forget what is no longer needed: published outbox rows and expired idempotency keys.

Run by the relay (`run_relay`) every OUTBOX_PURGE_INTERVAL seconds; the API processes
never purge.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .idempotency import idempotency_purge
from .models import OutboxEvent

logger = logging.getLogger(__name__)


def outbox_purge(*, older_than_seconds: int | None = None) -> int:
    """Delete published rows older than OUTBOX_RETENTION_SECONDS (or `older_than_seconds`);
    return how many."""
    seconds = (
        settings.OUTBOX_RETENTION_SECONDS if older_than_seconds is None else older_than_seconds
    )
    cutoff = timezone.now() - timedelta(seconds=seconds)
    deleted, _ = OutboxEvent.objects.filter(
        published_at__isnull=False, published_at__lt=cutoff
    ).delete()
    return deleted


def expired_rows_purge() -> tuple[int, int]:
    """Purge published outbox rows and expired idempotency keys; return both counts."""
    purged, expired = outbox_purge(), idempotency_purge()
    if purged or expired:
        logger.info("purged %d published outbox row(s), %d idempotency key(s)", purged, expired)
    return purged, expired
