"""The words of the contract (contract.md), each defined once.

- `Operation`: what the API did to its row, the `status` of an event on `orders.events`;
- `AckStatus`: the worker's answer on `orders.ack` (an operation's result, or `rejected`);
- `OrderStatus`: the `status` of the API's order row;
- `ProcessedStatus`: the `status` of the worker's order row (its Redis `order_status`);
- `PENDING`: the `status` a POST answers when it did not get the worker's ACK (with 202);
- `Processing`: what the pipeline did with an order, OrderView's `processing`.

They are Django choices (str enums), so models take `.choices` and everything else compares
and serialises them as their plain values.
"""

from django.db import models

PENDING = "pending"


class Operation(models.TextChoices):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


class AckStatus(models.TextChoices):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    REJECTED = "rejected"


class OrderStatus(models.TextChoices):
    NEW = "new"
    UPDATED = "updated"
    DELETED = "deleted"


class ProcessedStatus(models.TextChoices):
    DONE = "done"
    DELETED = "deleted"


class Processing(models.TextChoices):
    PENDING = PENDING  # accepted, its newest version not yet answered by the worker
    DONE = "done"
    DELETED = "deleted"
    REJECTED = "rejected"
