"""Each body the API answers with is declared once (response_shapes.py): the OpenAPI
component of a shape has the keys, in their order, of the bodies the code builds, and the
body, rendered as it is built, is what the component's serializer would render."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, TypedDict

import pytest
from rest_framework import serializers

from orders_api import views
from orders_api.exceptions import error_body
from orders_api.renderers import ExactJSONRenderer
from orders_api.response_shapes import (
    ErrorSerializer,
    OrderViewSerializer,
    OrderWriteResponseSerializer,
    shape_serializer,
)
from orders_api.selectors import order_view
from orderstream.messages import OrderResult
from testkit.factories import OrderFactory

pytestmark = pytest.mark.django_db

USER = "7f1d6c1e-3a51-4c53-9d0e-6b7c1f2a9e10"


@pytest.fixture
def components(api) -> dict:
    return api.get("/api/schema/?format=json").json()["components"]["schemas"]


def assert_has_the_keys_of(body: dict, component: dict, components: dict) -> None:
    """`body`'s keys are the component's properties, in their order, every one required;
    so are the keys of each object in it whose schema is a component."""
    assert list(body) == list(component["properties"])
    assert sorted(component["required"]) == sorted(body)
    for key, schema in component["properties"].items():
        ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
        nested = components[ref.rsplit("/", 1)[1]] if ref else {}
        if "properties" in nested:  # an object's component, not an enum's
            for item in body[key] if "items" in schema else [body[key]]:
                assert_has_the_keys_of(item, nested, components)


def a_result_of(order) -> OrderResult:
    return OrderResult(
        order_id=str(order.order_id),
        status="created",
        processed_at="2026-01-02T03:04:05Z",
        order_status="done",
        user_id=str(order.user_id),
        amount=Decimal("42.50"),
        payload={"id": "S-1", "amount": 42.5},
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-02T03:04:05Z",
        bucket=3,
        version=1,
    )


def test_the_reads_answer_the_order_view_component(api, components):
    order = OrderFactory(user_id=USER, payload={"id": "S-1", "amount": 10})

    by_id = api.get(f"/orders/{order.order_id}").json()
    by_external = api.get("/orders/by-external/S-1", {"user_id": USER}).json()
    listed = api.get("/orders", {"user_id": USER}).json()["results"]

    assert_has_the_keys_of(by_id, components["OrderEnvelope"], components)
    assert_has_the_keys_of(by_external, components["OrderEnvelope"], components)
    assert_has_the_keys_of(listed[0], components["OrderView"], components)
    with_result = order_view(order=order, result=a_result_of(order))
    assert_has_the_keys_of(with_result, components["OrderView"], components)


def test_the_write_answers_and_their_examples_have_the_write_component(api, components):
    answer = api.create(user_id=USER).json()
    post = api.get("/api/schema/?format=json").json()["paths"]["/orders"]["post"]

    assert_has_the_keys_of(answer, components["OrderWriteResponse"], components)
    for code in ("200", "202"):
        examples = post["responses"][code]["content"]["application/json"]["examples"]
        for example in examples.values():
            assert_has_the_keys_of(example["value"], components["OrderWriteResponse"], components)


def test_errors_answer_the_error_component(api, components):
    bad_uuid = api.get("/orders/not-a-uuid").json()
    unknown_url = api.get("/no/such/path").json()
    two_problems = error_body([("user_id", "must be a uuid"), ("payload", "is required")])

    for body in (bad_uuid, unknown_url, two_problems):
        assert_has_the_keys_of(body, components["Error"], components)


@pytest.mark.parametrize(
    "states, status",
    [
        ({"postgres_api": "ok", "redis": "ok"}, 200),
        ({"postgres_api": "ok", "redis": "down: ConnectionError"}, 200),
        ({"postgres_api": "down: OperationalError", "redis": "ok"}, 503),
    ],
    ids=["ready", "degraded", "unavailable"],
)
def test_health_and_ready_answer_their_components(api, components, monkeypatch, states, status):
    monkeypatch.setattr(views, "readiness_check", lambda: states)

    ready = api.get("/ready")

    assert ready.status_code == status
    assert_has_the_keys_of(ready.json(), components["Readiness"], components)
    assert ready.json()["status"] in components["ReadinessStatusEnum"]["enum"]
    assert_has_the_keys_of(api.get("/health").json(), components["Health"], components)


def test_the_bodies_render_as_their_schema_serializers_would():
    """Built as plain dicts, the bodies are rendered without the serializers: the same
    bytes, so the components' types (uuid strings, amounts with two places) hold."""
    order = OrderFactory(amount=Decimal("5.00"))
    order.refresh_from_db()
    render = ExactJSONRenderer().render
    bodies = [
        (OrderViewSerializer, order_view(order=order, result=None)),
        (OrderViewSerializer, order_view(order=order, result=a_result_of(order))),
        (OrderWriteResponseSerializer, {"order_id": uuid.uuid4(), "status": "pending"}),
        (ErrorSerializer, error_body([("user_id", "must be a uuid"), ("x", "\ud800")])),
    ]

    for serializer, body in bodies:
        assert render(body) == render(serializer(body).data)
    assert b'"amount":5.00' in render(bodies[0][1])


def test_a_shape_key_needs_one_drf_field():
    class Bare(TypedDict):
        name: str

    class Twice(TypedDict):
        name: Annotated[str, serializers.CharField(), serializers.CharField()]

    for shape in (Bare, Twice):
        with pytest.raises(TypeError, match=rf"{shape.__name__}\.name: expected Annotated"):
            shape_serializer(shape)
