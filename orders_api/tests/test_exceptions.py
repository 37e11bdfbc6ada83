"""The one exception handler: each domain error's HTTP status, in the one error shape."""

from __future__ import annotations

import json
import uuid

import pytest

from orders_api.errors import (
    EventTooLarge,
    IdempotencyKeyReused,
    OrderDeleted,
    OrderNotFound,
    OrderRejected,
)
from orders_api.exceptions import exception_handler

ORDER = uuid.UUID("2b7e1516-28ae-4d2a-a6ab-f7158809cf4f")


@pytest.mark.parametrize(
    ("error", "status", "field", "reason"),
    [
        (
            OrderNotFound("order_id", "no order with this order_id for this user_id"),
            404,
            "order_id",
            "no order with this order_id for this user_id",
        ),
        (OrderDeleted(), 409, "order_id", "the order is deleted and cannot be changed"),
        (
            EventTooLarge(900_001, 900_000),
            413,
            "payload",
            "the order's event would be 900001 bytes, more than the limit of 900000",
        ),
        (
            IdempotencyKeyReused("Idempotency-Key"),
            422,
            "Idempotency-Key",
            "was already used with a different request; use a new key",
        ),
        (
            OrderRejected(order_id=ORDER, reason="amount: exceeds", replayed=False),
            422,
            "payload",
            "amount: exceeds",
        ),
    ],
)
def test_each_domain_error_is_its_status_in_the_one_error_shape(error, status, field, reason):
    response = exception_handler(error, {})
    assert response.status_code == status
    assert response.data == {
        "error": f"{field}: {reason}",
        "field": field,
        "reason": reason,
        "errors": [{"field": field, "reason": reason}],
    }
    json.dumps(response.data)  # renders


@pytest.mark.parametrize(("replayed", "replay_header"), [(False, None), (True, "true")])
def test_a_rejected_order_is_stored_so_its_422_tells_where_and_whether_it_replays(
    replayed, replay_header
):
    error = OrderRejected(order_id=ORDER, reason="no", replayed=replayed)
    response = exception_handler(error, {})
    assert response.get("Location") == f"/orders/{ORDER}"
    assert response.get("Idempotent-Replayed") == replay_header


def test_other_domain_errors_carry_no_write_headers():
    response = exception_handler(OrderDeleted(), {})
    assert "Location" not in response
    assert "Idempotent-Replayed" not in response


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "status", "field"),
    [
        ("post", "/docs", 405, "method"),  # Swagger UI: an HTML page
        ("post", "/redoc", 405, "method"),  # ReDoc: an HTML page
        ("get", "/api/schema/?format=xml", 404, "path"),  # the schema: YAML
        ("post", "/admin/login/", 403, "CSRF"),  # Django's CSRF check: an HTML page
    ],
)
def test_every_4xx_that_reaches_django_is_in_the_one_json_shape(method, path, status, field):
    """Pages and the schema answered their 4xx in their own format (text, HTML, YAML)."""
    from django.test import Client

    response = getattr(Client(enforce_csrf_checks=True), method)(path)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json", response.content[:200]
    body = json.loads(response.content)
    assert body["field"] == field
    assert body["error"] == f"{field}: {body['reason']}"


@pytest.mark.django_db
def test_the_browsable_api_keeps_its_html_error_page(admin_client):
    response = admin_client.get("/orders/not-a-uuid", HTTP_ACCEPT="text/html")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
