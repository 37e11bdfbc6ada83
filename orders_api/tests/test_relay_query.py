"""The relay's pass query keeps its plan on a table PostgreSQL has not analyzed yet."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.utils import timezone

from orders_api.models import OutboxEvent
from orders_api.relay.publish import _due_heads_sql

pytestmark = pytest.mark.django_db

FRESH = "outbox_never_analyzed"


def scans(plan: dict) -> list[dict]:
    """Every node of an EXPLAIN (FORMAT JSON) plan."""
    found = [plan]
    for child in plan.get("Plans", []):
        found += scans(child)
    return found


def test_the_older_row_check_uses_the_order_version_index_before_any_analyze():
    """A table with a backlog and no statistics (a new database, before autovacuum's first
    ANALYZE; its partial indexes, made empty, count one row). The check for an older
    waiting row of the same order must look rows up by (order_id, version): scanning the
    waiting set for every row made a pass over 8,000 rows take seconds (quadratic)."""
    table = OutboxEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE {FRESH} (LIKE {table} INCLUDING ALL)")
        cursor.execute(
            f"INSERT INTO {FRESH} (event_id, order_id, version, topic, value, created_at, "
            "next_attempt_at, attempts, last_error) "
            "SELECT gen_random_uuid(), gen_random_uuid(), 1, 't', '{}', now(), now(), 0, '' "
            "FROM generate_series(1, 4000)"
        )
        params = [timezone.now(), 500, 16 * 1024 * 1024]  # due at, rows, bytes
        cursor.execute("EXPLAIN (FORMAT JSON) " + _due_heads_sql(FRESH), params)
        [[plan]] = cursor.fetchall()
    plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
    anti_joins = [node for node in scans(plan) if node.get("Join Type") == "Anti"]
    assert anti_joins, json.dumps(plan, indent=1)
    [_, older] = anti_joins[0]["Plans"]
    conditions = json.dumps([node.get("Index Cond", "") for node in scans(older)])
    assert "order_id" in conditions, json.dumps(plan, indent=1)
