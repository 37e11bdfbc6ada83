"""The admin needs a staff login and shows, searches and filters both databases' orders."""

import re

import pytest
from django.urls import reverse

from testkit.factories import OrderFactory, ProcessedOrderFactory

pytestmark = pytest.mark.django_db(databases=["default", "worker"])

CHANGELISTS = {
    "api": ("admin:orders_api_order_changelist", OrderFactory),
    "worker": ("admin:orders_worker_processedorder_changelist", ProcessedOrderFactory),
}


@pytest.fixture(params=sorted(CHANGELISTS))
def changelist(request):
    url_name, factory = CHANGELISTS[request.param]
    return reverse(url_name), factory


def test_admin_index_redirects_anonymous_users_to_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_changelist_needs_staff(client, django_user_model, changelist):
    url, _ = changelist
    user = django_user_model.objects.create_user("plain", password="pw-123456")
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_admin_index_lists_both_databases(admin_client):
    response = admin_client.get("/admin/")
    assert response.status_code == 200
    body = response.content.decode()
    title = "Orders, outbox, processed orders and dead letters | OrderStream admin"
    assert f"<title>{title}</title>" in body
    assert "OrderStream administration" in body
    assert "Orders (API database)" in body
    assert "Processed orders (worker database)" in body


def test_changelist_shows_rows(admin_client, changelist):
    url, factory = changelist
    order = factory()
    response = admin_client.get(url)
    assert response.status_code == 200
    assert str(order.order_id) in response.content.decode()


@pytest.mark.parametrize("field", ["order_id", "user_id", "external_id"])
def test_changelist_search(admin_client, changelist, field):
    url, factory = changelist
    wanted = factory(payload={"id": "ext-wanted-1", "amount": 1})
    other = factory(payload={"id": "ext-other-2", "amount": 1})
    term = wanted.payload["id"] if field == "external_id" else str(getattr(wanted, field))
    body = admin_client.get(url, {"q": term}).content.decode()
    assert str(wanted.order_id) in body
    assert str(other.order_id) not in body


def test_changelist_filters_by_status(admin_client, changelist):
    url, factory = changelist
    kept = factory()
    deleted = factory(status="deleted")
    body = admin_client.get(url, {"status__exact": "deleted"}).content.decode()
    assert str(deleted.order_id) in body
    assert str(kept.order_id) not in body


def test_change_page_shows_the_order_read_only(admin_client, changelist):
    """The page of one order shows that order's values as text: no form field to edit,
    no save button."""
    url, factory = changelist
    order = factory(payload={"id": "ext-shown-1", "amount": "12.50"}, amount="12.50")
    factory()  # another order: the page must show the one asked for
    response = admin_client.get(f"{url}{order.pk}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    shown = re.findall(r'<div class="readonly">(.*?)</div>', body, re.S)
    assert str(order.order_id) in shown and str(order.user_id) in shown, shown
    assert "12.50" in shown, shown
    assert any("ext-shown-1" in value for value in shown), shown
    fields = re.findall(r'<(?:input|textarea|select)[^>]*\bname="([^"]+)"', body)
    assert set(fields) <= {"csrfmiddlewaretoken"}, fields
    assert 'name="_save"' not in body


def test_orders_are_read_only_in_the_admin(admin_client, changelist):
    """Changes go through the API and the worker only: no add, change or delete here."""
    url, factory = changelist
    order = factory()
    assert admin_client.get(f"{url}add/").status_code == 403
    assert admin_client.get(f"{url}{order.pk}/delete/").status_code == 403
    response = admin_client.post(f"{url}{order.pk}/change/", {"status": "deleted"})
    assert response.status_code == 403
    order.refresh_from_db()
    assert order.status != "deleted"


def test_the_api_orders_can_be_filtered_by_what_the_worker_said(admin_client):
    """The ACK recorder's outcome is a column and a filter of the API's orders."""
    rejected = OrderFactory(outcome="rejected", outcome_version=1, outcome_reason="bad")
    done = OrderFactory(outcome="done", outcome_version=1, applied_version=1)
    url = reverse("admin:orders_api_order_changelist")
    body = admin_client.get(url, {"outcome__exact": "rejected"}).content.decode()
    assert str(rejected.order_id) in body
    assert str(done.order_id) not in body
    assert "column-outcome" in admin_client.get(url).content.decode()


def test_messages_are_set_up_for_the_admin_only(admin_client):
    """The admin shows messages (an action's result); API requests never build a
    message store (`orderstream.admin_messages`)."""
    from django.contrib import messages

    admin_page = admin_client.get("/admin/")
    api_page = admin_client.get("/health")

    assert hasattr(admin_page.wsgi_request, "_messages")
    messages.info(admin_page.wsgi_request, "shown in the admin")  # raises without a store
    assert not hasattr(api_page.wsgi_request, "_messages")
