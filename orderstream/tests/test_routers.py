"""Each app's models read, write and migrate on their own database alias only."""

import pytest
from django.contrib.auth.models import User
from django.db import connections, router

from orders_api.models import Order
from orders_worker.models import ProcessedOrder
from testkit.factories import OrderFactory, ProcessedOrderFactory

ALIASES = ("default", "worker")


def tables_of(alias: str) -> set[str]:
    with connections[alias].cursor() as cursor:
        return set(connections[alias].introspection.table_names(cursor))


@pytest.mark.parametrize(
    ("model", "alias"),
    [(Order, "default"), (ProcessedOrder, "worker"), (User, "default")],
)
def test_reads_and_writes_are_routed_to_the_models_alias(model, alias):
    assert router.db_for_read(model) == alias
    assert router.db_for_write(model) == alias


@pytest.mark.parametrize(
    ("app_label", "allowed_on"),
    [
        ("orders_api", "default"),
        ("orders_worker", "worker"),
        ("auth", "default"),
        ("contenttypes", "default"),
        ("admin", "default"),
        ("sessions", "default"),
    ],
)
def test_each_app_migrates_on_its_alias_only(app_label, allowed_on):
    for alias in ALIASES:
        assert router.allow_migrate(alias, app_label) is (alias == allowed_on)


def test_no_relation_across_databases():
    order = Order(order_id="00000000-0000-0000-0000-000000000001")
    processed = ProcessedOrder(order_id="00000000-0000-0000-0000-000000000001")
    assert router.allow_relation(order, processed) is False


@pytest.mark.django_db(databases=ALIASES)
def test_tables_exist_only_in_their_own_database():
    api_tables, worker_tables = tables_of("default"), tables_of("worker")
    assert Order._meta.db_table in api_tables
    assert Order._meta.db_table not in worker_tables
    assert ProcessedOrder._meta.db_table in worker_tables
    assert ProcessedOrder._meta.db_table not in api_tables
    assert "auth_user" in api_tables and "auth_user" not in worker_tables


@pytest.mark.django_db(databases=ALIASES)
def test_rows_land_in_their_own_database():
    order = OrderFactory()
    processed = ProcessedOrderFactory()
    assert Order.objects.filter(pk=order.pk).exists()
    assert ProcessedOrder.objects.filter(pk=processed.pk).exists()
    with connections["default"].cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {Order._meta.db_table} WHERE order_id = %s", [order.pk]
        )
        assert cursor.fetchone()[0] == 1
    with connections["worker"].cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {ProcessedOrder._meta.db_table} WHERE order_id = %s",
            [processed.pk],
        )
        assert cursor.fetchone()[0] == 1
