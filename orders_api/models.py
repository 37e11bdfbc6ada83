"""The API's tables in the `default` database: orders, their outbox and idempotency keys."""

import uuid

from django.db import models
from django.db.models import F, Q
from django.db.models.fields.json import KT
from django.db.models.functions import MD5

from orderstream.statuses import OrderStatus, Processing

# What the ACK recorder writes in `Order.outcome` (`pending` is derived, never stored).
RECORDED_OUTCOMES = [
    (p.value, p.label) for p in (Processing.DONE, Processing.DELETED, Processing.REJECTED)
]


class Order(models.Model):
    """An order as received over HTTP; `version` grows with every accepted change."""

    order_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user_id = models.UUIDField(db_index=True)
    amount = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.NEW)
    payload = models.JSONField(default=dict)
    # The payload as accepted: the JSON text its create or update event carried, which a
    # delete's event carries again. jsonb (`payload`, for queries) reorders keys and
    # prints numbers without an exponent: through it 1e300 would come back as 301 digits.
    # Null in rows written before migration 0009 (their delete carries `payload`).
    payload_text = models.TextField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    bucket = models.PositiveSmallIntegerField()
    version = models.PositiveIntegerField(default=1)
    # What the worker said of the order, recorded from its ACKs by the ACK recorder
    # (ack_recorder.py; the rules in processing.py): the winning outcome (done, deleted or
    # rejected; empty while none), the version it is for, the worker's reason for a
    # rejection, and the newest version the worker applied.
    outcome = models.CharField(max_length=16, choices=RECORDED_OUTCOMES, blank=True, default="")
    outcome_version = models.PositiveIntegerField(null=True, blank=True)
    outcome_reason = models.TextField(blank=True, default="")
    applied_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            # Serves GET /orders/by-external/{external_id}?user_id=, newest first. It holds
            # the md5 of payload.id: a btree row takes at most 2704 bytes, and an id may be
            # longer (the lookup compares the id itself too).
            models.Index(
                MD5(KT("payload__id")),
                F("user_id"),
                F("created_at").desc(),
                name="order_external_id_user_idx",
            ),
        ]

    def __str__(self) -> str:
        return str(self.order_id)


class OutboxEvent(models.Model):
    """An event written in the same transaction as its order, published after commit.

    `published_at` stays empty until the broker acknowledged the message; the relay
    publishes rows still empty at `next_attempt_at` and purges old published rows. A row
    the broker refuses for good (too large, invalid record) is `parked_at`: never retried,
    kept for an operator (the admin's retry action, `outbox_events_unpark`, puts it back).

    `value` holds the record value exactly as encoded and size-checked when the order
    was written (UTF-8 JSON text), so the relay publishes the very bytes the request
    would have: a jsonb round trip would reorder keys and could lengthen numbers
    (1e300 comes back as 301 digits) past the broker's limit. Rows written before
    migration 0004 hold jsonb's rendering of the event instead: the same JSON document,
    published as it is.
    """

    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(unique=True)
    order_id = models.UUIDField()
    version = models.PositiveIntegerField()
    topic = models.CharField(max_length=249)
    value = models.TextField()
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)
    parked_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            # The relay's scan: unpublished rows that are due, oldest first.
            models.Index(
                F("next_attempt_at"),
                F("id"),
                name="outbox_unpublished_idx",
                condition=Q(published_at__isnull=True, parked_at__isnull=True),
            ),
            models.Index(
                F("published_at"),
                name="outbox_published_idx",
                condition=Q(published_at__isnull=False),
            ),
            models.Index(F("order_id"), F("version"), name="outbox_order_version_idx"),
            # Parked rows (few): the metrics' count of them and the admin's filter.
            models.Index(
                F("parked_at"),
                name="outbox_parked_idx",
                condition=Q(parked_at__isnull=False, published_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} v{self.version}"


class IdempotencyKey(models.Model):
    """The first request made with an `Idempotency-Key` (per user) and what it did."""

    user_id = models.UUIDField()
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    order_id = models.UUIDField()
    event_id = models.UUIDField()
    operation = models.CharField(max_length=16)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user_id", "key"], name="idempotency_user_key_uniq"),
        ]
        indexes = [models.Index(F("created_at"), name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.user_id}/{self.key}"
