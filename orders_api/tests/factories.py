"""factory-boy factories for the API database."""

import uuid

import factory
from django.utils import timezone

from orders_api.models import Order
from orderstream.order_fields import order_bucket
from orderstream.statuses import OrderStatus


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order
        database = "default"

    order_id = factory.LazyFunction(uuid.uuid4)
    user_id = factory.LazyFunction(uuid.uuid4)
    amount = 10
    status = OrderStatus.NEW
    payload = factory.Sequence(lambda n: {"id": f"ext-{n}", "amount": 10})
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyAttribute(lambda o: o.created_at)
    bucket = factory.LazyAttribute(lambda o: order_bucket(o.order_id))
    version = 1
