"""The benchmark's bare-DRF baseline (bench/baseline.py): its create writes an
order and an already-published outbox row in one transaction, its GET reads one order by
primary key, and the real API routes none of it."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import override_settings
from django.urls import Resolver404, resolve

from orders_api.models import Order, OutboxEvent

pytestmark = pytest.mark.django_db(transaction=True)
BASELINE = override_settings(ROOT_URLCONF="bench.baseline")


def _create(client, user_id: str):
    body = {"user_id": user_id, "payload": {"id": "bench-1", "items": [{"qty": 2}]}}
    return client.post("/orders", data=json.dumps(body), content_type="application/json")


@BASELINE
def test_a_baseline_create_writes_an_order_and_a_published_outbox_row(client):
    user_id = str(uuid.uuid4())
    response = _create(client, user_id)
    assert response.status_code == 201
    order = Order.objects.get(order_id=response.json()["order_id"])
    assert str(order.user_id) == user_id and order.payload["id"] == "bench-1"
    event = OutboxEvent.objects.get(order_id=order.order_id)
    assert event.published_at is not None  # the relay leaves it alone


@BASELINE
def test_a_baseline_create_refuses_a_body_without_a_user_id(client):
    response = client.post("/orders", data="{}", content_type="application/json")
    assert response.status_code == 400
    assert "user_id" in response.json()
    assert Order.objects.count() == 0


@BASELINE
def test_a_baseline_get_reads_one_order_by_primary_key(client):
    order_id = _create(client, str(uuid.uuid4())).json()["order_id"]
    response = client.get(f"/orders/{order_id}")
    assert response.status_code == 200
    assert response.json()["order_id"] == order_id
    assert client.get(f"/orders/{uuid.uuid4()}").status_code == 404


def test_the_real_api_routes_no_baseline_view():
    match = resolve("/orders")
    assert not match.func.__module__.startswith("bench.baseline")
    with pytest.raises(Resolver404):
        resolve("/orders/not-a-uuid/extra")
