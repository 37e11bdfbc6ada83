"""GET /orders/{order_id}, the hot read: what it costs the database."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from testkit.factories import OrderFactory

from .support import USER

pytestmark = pytest.mark.django_db


def test_a_read_is_one_query_of_the_views_columns(api):
    """One query, which leaves out payload_text (as large as the payload, never shown)."""
    order = OrderFactory(user_id=USER, payload={"id": "Q-1", "amount": 10})
    with CaptureQueriesContext(connections["default"]) as queries:
        response = api.get(f"/orders/{order.order_id}")
    assert response.status_code == 200
    assert len(queries) == 1, [q["sql"] for q in queries]
    sql = queries[0]["sql"]
    assert "payload_text" not in sql and "*" not in sql, sql
    assert '"payload"' in sql and '"applied_version"' in sql, sql
