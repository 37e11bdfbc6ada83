"""The DRF browsable API: the list page renders and its raw-data form creates an order.

The raw-data form is sent by DRF's ajax-form.js: a POST to the form's action with the
textarea's text as the body, its content type, and `Accept: text/html`. The tests send
exactly that; orderstream/tests/test_browser.py clicks the real form in a browser.
"""

from __future__ import annotations

import html
import json
import re

import pytest

from orders_api.models import Order
from testkit.factories import OrderFactory

pytestmark = pytest.mark.django_db

USER = "7f1d6c1e-3a51-4c53-9d0e-6b7c1f2a9e10"
HTML = {"Accept": "text/html"}


def raw_data_form(page: str) -> dict:
    """The browsable API's raw-data POST form: its action, content type and initial text."""
    block = re.search(r'id="post-generic-content-form">(.*?)</form>', page, re.S)
    assert block, "no raw-data POST form on the page"
    form = block.group(1)
    content_type = re.search(r'<option value="([^"]*)" selected>', form)
    content = re.search(r'<textarea name="_content"[^>]*>(.*?)</textarea>', form, re.S)
    assert content_type and content, form
    return {
        "action": html.unescape(re.search(r'<form action="([^"]*)"', form).group(1)),
        "content_type": content_type.group(1),
        "content": html.unescape(content.group(1)),
    }


def test_the_list_page_renders_for_a_staff_user_with_its_post_form(admin_client):
    """Was a 500: the HTML renderer asked the viewset for a queryset it did not have."""
    order = OrderFactory(user_id=USER)
    page = admin_client.get("/orders", headers=HTML)
    assert page.status_code == 200, page.content[-2000:]
    assert page["Content-Type"].startswith("text/html")
    text = page.content.decode()
    assert str(order.order_id) in text
    form = raw_data_form(text)
    assert (form["action"], form["content_type"]) == ("/orders", "application/json")
    # The form starts with the fields of the input (not those of an order view).
    assert set(json.loads(form["content"])) >= {"order_id", "user_id", "payload_json", "payload"}


def test_the_list_page_renders_for_one_user(client):
    mine, other = OrderFactory(user_id=USER), OrderFactory()
    page = client.get("/orders", {"user_id": USER}, headers=HTML)
    assert page.status_code == 200, page.content[-2000:]
    text = page.content.decode()
    assert str(mine.order_id) in text
    assert str(other.order_id) not in text
    assert raw_data_form(text)["action"] == f"/orders?user_id={USER}"


def test_a_bad_query_on_the_list_page_is_a_400_page(client):
    page = client.get("/orders", {"user_id": "nope"}, headers=HTML)
    assert page.status_code == 400
    assert "must be a uuid" in html.unescape(page.content.decode())


def test_the_raw_data_form_creates_an_order(admin_client):
    """The form's POST goes to the page's own URL (here with wait=false) and answers HTML."""
    form = raw_data_form(admin_client.get("/orders?wait=false", headers=HTML).content.decode())
    body = {"user_id": USER, "payload": {"id": "B-1", "amount": "3.50"}}
    answer = admin_client.post(
        form["action"], json.dumps(body), content_type=form["content_type"], headers=HTML
    )
    assert answer.status_code == 202, answer.content[-2000:]
    assert answer["Content-Type"].startswith("text/html")
    order_id = re.search(r'"order_id": "([0-9a-f-]{36})"', html.unescape(answer.content.decode()))
    order = Order.objects.get(order_id=order_id.group(1))
    assert (str(order.user_id), str(order.amount)) == (USER, "3.50")
