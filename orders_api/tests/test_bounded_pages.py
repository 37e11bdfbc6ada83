"""GET /orders pages bounded by bytes as well as rows: a page of large orders is shorter,
and its `next` link goes on where it stopped, so walking the links lists every order once."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from testkit.factories import OrderFactory

from .support import USER, assert_error, schema_of

pytestmark = pytest.mark.django_db

NOTE = 20_000  # characters of each large order's note: its payload is about 20 KB


def orders_of_user(count: int, note: int = NOTE) -> list[str]:
    """`count` orders of USER, newest first, each with a payload of about `note` bytes."""
    start = timezone.now()
    orders = [
        OrderFactory(
            user_id=USER,
            payload={"id": f"big-{n}", "note": "x" * note},
            created_at=start - timedelta(seconds=n),
        )
        for n in range(count)
    ]
    return [str(order.order_id) for order in orders]


def query_of(link: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(link).query).items()}


def walk(api, query: dict) -> list[dict]:
    """Every page from the one `query` asks for, following the `next` links."""
    pages = [api.get("/orders", query).json()]
    while pages[-1]["next"] and len(pages) < 50:
        response = api.get("/orders", query_of(pages[-1]["next"]))
        assert response.status_code == 200, response.content
        pages.append(response.json())
    return pages


def test_a_page_of_large_orders_is_shorter_and_its_next_link_goes_on_where_it_stopped(
    api, settings
):
    """Two orders of 20 KB fit in 50 000 bytes, a third does not: pages of 5 rows hold 2,
    and the `next` links list all 7 orders once, newest first."""
    settings.API_PAGE_MAX_BYTES = 50_000
    expected = orders_of_user(7)
    pages = walk(api, {"user_id": USER, "page_size": 5})
    assert [len(page["results"]) for page in pages] == [2, 2, 2, 1]
    assert {page["count"] for page in pages} == {7}
    listed = [order["order_id"] for page in pages for order in page["results"]]
    assert listed == expected
    assert query_of(pages[0]["next"]) == {"user_id": USER, "page_size": "5", "offset": "2"}


def test_an_order_larger_than_the_bound_is_a_page_of_its_own(api, settings):
    settings.API_PAGE_MAX_BYTES = 1_000
    expected = orders_of_user(3)
    pages = walk(api, {"user_id": USER, "page_size": 10})
    assert [[o["order_id"] for o in page["results"]] for page in pages] == [[e] for e in expected]


def test_pages_of_small_orders_keep_their_page_numbers(api):
    """Within the bound nothing changes: full pages, and `next` is the next page number."""
    expected = orders_of_user(5, note=10)
    first = api.get("/orders", {"user_id": USER, "page_size": 3}).json()
    assert [o["order_id"] for o in first["results"]] == expected[:3]
    assert query_of(first["next"]) == {"user_id": USER, "page_size": "3", "page": "2"}
    second = api.get("/orders", query_of(first["next"])).json()
    assert [o["order_id"] for o in second["results"]] == expected[3:]
    assert second["next"] is None


def test_a_page_at_an_offset_links_back_to_the_rows_before_it(api, settings):
    settings.API_PAGE_MAX_BYTES = 50_000
    expected = orders_of_user(5)
    page = api.get("/orders", {"user_id": USER, "page_size": 3, "offset": 3}).json()
    assert [o["order_id"] for o in page["results"]] == expected[3:5]
    assert page["next"] is None
    assert query_of(page["previous"]) == {"user_id": USER, "page_size": "3", "offset": "0"}
    first = api.get("/orders", {"user_id": USER, "page_size": 2, "offset": 1}).json()
    assert [o["order_id"] for o in first["results"]] == expected[1:3]
    assert query_of(first["previous"]) == {"user_id": USER, "page_size": "1", "offset": "0"}
    assert api.get("/orders", {"user_id": USER, "offset": 0}).json()["previous"] is None


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"offset": "-1"}, "integer from 0"),
        ({"offset": "abc"}, "integer from 0"),
        ({"offset": ""}, "integer from 0"),
        ({"offset": "2"}, "no order at offset 2"),
        ({"offset": "0", "page": "1"}, "not both"),
    ],
)
def test_an_offset_that_is_no_row_of_the_list_is_400_naming_offset(api, query, reason):
    orders_of_user(2, note=10)
    assert_error(api.get("/orders", {"user_id": USER, **query}), 400, "offset", reason)


def test_offset_0_of_an_empty_list_is_an_empty_page(api):
    page = api.get("/orders", {"user_id": USER, "offset": 0}).json()
    assert (page["count"], page["results"], page["next"], page["previous"]) == (0, [], None, None)


def test_the_schema_offers_offset_from_0(api):
    get = schema_of(api)["paths"]["/orders"]["get"]
    offset = {p["name"]: p for p in get["parameters"]}["offset"]
    assert (offset["in"], offset["schema"]) == ("query", {"type": "integer", "minimum": 0})


def test_the_browsable_list_at_an_offset_links_to_the_rows_before_and_after(client):
    """The HTML page's controls: previous and next, and no page numbers (an offset is no
    page)."""
    expected = orders_of_user(3, note=10)
    query = {"user_id": USER, "page_size": 1, "offset": 1}
    page = client.get("/orders", query, headers={"Accept": "text/html"})
    assert page.status_code == 200, page.content[-2000:]
    text = html.unescape(page.content.decode())
    assert expected[1] in text and expected[0] not in text
    controls = re.search(r'<ul class="pagination">(.*?)</ul>', text, re.DOTALL).group(1)
    links = [query_of(link) for link in re.findall(r'<a href="([^"]*)"', controls)]
    base = {"user_id": USER, "page_size": "1"}
    assert links == [base | {"offset": "0"}, base | {"offset": "2"}]  # previous, next
