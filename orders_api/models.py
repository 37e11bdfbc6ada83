"""The API's tables in the `default` database: the raw order as clients sent it."""

import uuid

from django.db import models
from django.db.models import F
from django.db.models.fields.json import KT


class OrderStatus(models.TextChoices):
    NEW = "new"
    UPDATED = "updated"
    DELETED = "deleted"


class Order(models.Model):
    """An order as received over HTTP; `version` grows with every accepted change."""

    order_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user_id = models.UUIDField(db_index=True)
    amount = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.NEW)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    bucket = models.PositiveSmallIntegerField()
    version = models.PositiveIntegerField(default=1)

    class Meta:
        indexes = [
            # Serves GET /orders/by-external/{external_id}?user_id=, newest first.
            models.Index(
                KT("payload__id"),
                F("user_id"),
                F("created_at").desc(),
                name="order_external_id_user_idx",
            ),
        ]

    def __str__(self) -> str:
        return str(self.order_id)
