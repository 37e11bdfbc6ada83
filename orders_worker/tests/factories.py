"""factory-boy factories for the worker database."""

import uuid

import factory
from django.utils import timezone

from orders_worker.models import ProcessedOrder
from orderstream.messages import OrderEvent
from orderstream.order_fields import external_id_of, order_bucket
from orderstream.statuses import ProcessedStatus
from orderstream.timestamps import rfc3339


class ProcessedOrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProcessedOrder
        database = "worker"

    order_id = factory.LazyFunction(uuid.uuid4)
    user_id = factory.LazyFunction(uuid.uuid4)
    amount = 10
    status = ProcessedStatus.DONE
    payload = factory.Sequence(lambda n: {"id": f"ext-{n}", "amount": 10})
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyAttribute(lambda o: o.created_at)
    processed_at = factory.LazyAttribute(lambda o: o.updated_at)
    bucket = factory.LazyAttribute(lambda o: order_bucket(o.order_id))
    version = 1
    last_event_id = factory.LazyFunction(uuid.uuid4)


class OrderEventFactory(factory.Factory):
    """An `orders.events` message; `order_id` is new unless given."""

    class Meta:
        model = OrderEvent

    event_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    order_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    user_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    payload = factory.Sequence(lambda n: {"id": f"ext-{n}", "amount": "12.50"})
    status = "created"
    version = 1
    timestamp = factory.LazyFunction(lambda: rfc3339(timezone.now()))
    external_id = factory.LazyAttribute(lambda o: external_id_of(o.payload))
