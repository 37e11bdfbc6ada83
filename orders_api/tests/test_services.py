"""`order_upsert` (services.py): what a change writes, here the payload its events carry."""

from __future__ import annotations

import json
import uuid

import pytest

from orders_api.models import Order, OutboxEvent
from orderstream.messages import MAX_EVENT_BYTES
from testkit.factories import OrderFactory

pytestmark = pytest.mark.django_db

USER = str(uuid.uuid4())
# 1e300 as the API writes it (the float's shortest form); jsonb prints it as 301 digits.
BIG = "1e+300"


def event_payloads(order_id: str) -> list[bytes]:
    """The payload text of each outbox event of the order, in version order."""
    values = OutboxEvent.objects.filter(order_id=order_id).order_by("version")
    return [
        v.encode().split(b'"payload":', 1)[1].split(b',"status":', 1)[0]
        for v in values.values_list("value", flat=True)
    ]


def create(api, payload_json: str) -> str:
    body = (
        json.dumps({"user_id": USER}).encode()[:-1] + b',"payload":' + payload_json.encode() + b"}"
    )
    response = api.post("/orders?wait=false", None, raw=body)
    assert response.status_code == 202, response.content
    return response.json()["order_id"]


def delete(api, order_id: str):
    body = {"order_id": order_id, "user_id": USER, "status": "deleted"}
    return api.post("/orders?wait=false", body)


def test_a_delete_event_carries_the_payload_as_it_was_accepted(api):
    """The delete's event is built from the order's last accepted payload, not from its
    jsonb rendering: 1e300 stays 1e+300 (jsonb prints it as a 301-digit integer)."""
    order_id = create(api, '{"x": 1e300, "id": "A-1"}')
    assert delete(api, order_id).status_code == 202

    created, deleted = event_payloads(order_id)
    assert created == b'{"x":1e+300,"id":"A-1"}'
    assert deleted == created
    assert (
        json.loads(OutboxEvent.objects.get(order_id=order_id, version=2).value)["external_id"]
        == "A-1"
    )


def test_an_order_of_3000_large_numbers_can_be_deleted(api):
    """3,000 numbers of 1e300 make an 18 KB create; the delete's event is as small (it
    was 900 KB of digits through jsonb, beyond MAX_EVENT_BYTES: a 413, never deletable)."""
    order_id = create(api, json.dumps({"n": [1e300] * 3000}))
    response = delete(api, order_id)

    assert response.status_code == 202, response.content
    created, deleted = event_payloads(order_id)
    assert deleted == created
    assert len(deleted) < 25_000 < MAX_EVENT_BYTES
    assert Order.objects.get(order_id=order_id).status == "deleted"


def test_a_delete_after_an_update_carries_the_updated_payload(api):
    order_id = create(api, '{"x": 1e300}')
    body = {"order_id": order_id, "user_id": USER, "payload_json": '{"y": 2.5e-300, "x": 1}'}
    assert api.post("/orders?wait=false", body).status_code == 202
    assert delete(api, order_id).status_code == 202

    created, updated, deleted = event_payloads(order_id)
    assert updated == b'{"y":2.5e-300,"x":1}'
    assert deleted == updated


def test_an_order_stored_without_its_payload_text_is_deleted_with_its_stored_payload(api):
    """Orders written before the payload's text was kept: the delete's event carries the
    stored (jsonb) payload, as it always did."""
    order = OrderFactory(user_id=USER, payload={"id": "D-1", "amount": 3})
    assert order.payload_text is None
    assert delete(api, str(order.order_id)).status_code == 202

    [deleted] = event_payloads(str(order.order_id))
    assert json.loads(deleted) == {"id": "D-1", "amount": 3}
