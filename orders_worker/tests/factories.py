"""factory-boy factories for the worker database."""

import uuid

import factory
from django.utils import timezone

from orders_worker.models import ProcessedOrder, ProcessedOrderStatus
from orders_worker.rules import order_bucket


class ProcessedOrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProcessedOrder
        database = "worker"

    order_id = factory.LazyFunction(uuid.uuid4)
    user_id = factory.LazyFunction(uuid.uuid4)
    amount = 10
    status = ProcessedOrderStatus.DONE
    payload = factory.Sequence(lambda n: {"id": f"ext-{n}", "amount": 10})
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyAttribute(lambda o: o.created_at)
    processed_at = factory.LazyAttribute(lambda o: o.updated_at)
    bucket = factory.LazyAttribute(lambda o: order_bucket(o.order_id))
    version = 1
    last_event_id = factory.LazyFunction(uuid.uuid4)
