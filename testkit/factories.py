"""factory-boy factories of both apps' databases (`OrderFactory`: the API's,
`ProcessedOrderFactory`: the worker's) and of the events between them."""

import uuid

import factory
from django.utils import timezone

from orders_api.models import Order
from orders_worker.models import ProcessedOrder
from orderstream.messages import OrderEvent
from orderstream.order_fields import external_id_of, order_bucket
from orderstream.statuses import OrderStatus, ProcessedStatus
from orderstream.timestamps import rfc3339


class _OrderRowFactory(factory.django.DjangoModelFactory):
    """The columns an order has in both databases."""

    class Meta:
        abstract = True

    order_id = factory.LazyFunction(uuid.uuid4)
    user_id = factory.LazyFunction(uuid.uuid4)
    amount = 10
    payload = factory.Sequence(lambda n: {"id": f"ext-{n}", "amount": 10})
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyAttribute(lambda o: o.created_at)
    bucket = factory.LazyAttribute(lambda o: order_bucket(o.order_id))
    version = 1


class OrderFactory(_OrderRowFactory):
    class Meta:
        model = Order
        database = "default"

    status = OrderStatus.NEW


class ProcessedOrderFactory(_OrderRowFactory):
    class Meta:
        model = ProcessedOrder
        database = "worker"

    status = ProcessedStatus.DONE
    processed_at = factory.LazyAttribute(lambda o: o.updated_at)
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
