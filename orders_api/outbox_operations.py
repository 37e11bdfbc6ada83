"""Operator actions on the outbox: put parked events back in the relay's queue.

The relay itself (`relay/publish.py`) parks a row the broker refuses for good and never tries it
again; what an operator may do about such rows once the cause is fixed lives here, so the
admin (and anything else) only calls a function.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from django.utils import timezone

from orders_api.models import OutboxEvent

logger = logging.getLogger(__name__)


def outbox_events_unpark(*, event_ids: Iterable[uuid.UUID | str]) -> int:
    """Put the parked, unpublished events among `event_ids` back in the relay's queue.

    `event_ids` are the events' `event_id` uuids (a list, or a queryset of them). For each
    row with `parked_at` set and `published_at` empty, `parked_at` is cleared and
    `next_attempt_at` set to now, so the relay's next pass publishes it. `attempts` is
    unchanged, and `last_error` is kept as the history of why the row was parked: the
    relay overwrites it if the next try fails too (and parks the row again if the broker
    still refuses it for good). Rows that are not parked, or already published, are left
    alone. Returns how many rows were put back.
    """
    count = OutboxEvent.objects.filter(
        event_id__in=event_ids, parked_at__isnull=False, published_at__isnull=True
    ).update(parked_at=None, next_attempt_at=timezone.now())
    if count:
        logger.info("outbox: %d parked event(s) put back in the relay's queue", count)
    return count
