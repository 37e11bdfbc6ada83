"""The HTTP contract of contract.md: every status code, every input variant, one error shape."""

from __future__ import annotations

import io
import json
import threading
import uuid
import wsgiref.util
from datetime import timedelta
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.db import connections
from django.test import Client
from django_redis import get_redis_connection

from orders_api import services
from orders_api.ack_wait import gate as ack_wait_gate
from orders_api.ack_wait import process_listener
from orders_api.ack_wait.listener import AckListener
from orders_api.models import IdempotencyKey, Order, OutboxEvent
from orders_api.selectors import order_view
from orders_worker.models import ProcessedOrder
from orderstream import messages, order_fields
from orderstream.messages import MAX_EVENT_BYTES, OrderAck, OrderResult
from orderstream.order_fields import CENT
from orderstream.statuses import OrderStatus
from testkit.factories import OrderFactory
from testkit.helpers import WatchedEvent

from .support import USER, assert_error, schema_of

pytestmark = pytest.mark.django_db

# -- POST /orders: creates --------------------------------------------------------------


@pytest.mark.parametrize("order_id", ["absent", None, "", "0", 0])
def test_empty_absent_or_zero_order_id_creates_an_order(api, order_id):
    body = {"user_id": USER, "payload": {"id": "A-1", "amount": "12.50"}}
    if order_id != "absent":
        body["order_id"] = order_id
    response = api.post("/orders?wait=false", body)
    assert response.status_code == 202
    answer = response.json()
    assert answer["status"] == "pending"
    order = Order.objects.get(order_id=answer["order_id"])
    assert (order.status, order.version, str(order.user_id)) == (OrderStatus.NEW, 1, USER)
    assert str(order.amount) == "12.50"
    assert response["Location"] == f"/orders/{order.order_id}"


@pytest.mark.parametrize(
    "data",
    [
        {"payload_json": {"id": "P-1", "items": [{"price": 2, "qty": 3}]}},
        {"payload_json": json.dumps({"id": "P-1", "items": [{"price": 2, "qty": 3}]})},
        {"payload": {"id": "P-1", "items": [{"price": 2, "qty": 3}]}},
    ],
    ids=["payload_json-object", "payload_json-string", "payload-object"],
)
def test_payload_variants_store_the_same_object(api, data):
    response = api.post("/orders?wait=false", {"user_id": USER, **data})
    assert response.status_code == 202
    order = Order.objects.get(order_id=response.json()["order_id"])
    assert order.payload == {"id": "P-1", "items": [{"price": 2, "qty": 3}]}
    assert str(order.amount) == "6.00"


def test_payload_json_wins_over_payload_when_both_are_given(api):
    body = {"user_id": USER, "payload_json": {"id": "json"}, "payload": {"id": "object"}}
    response = api.post("/orders?wait=false", body)
    assert Order.objects.get(order_id=response.json()["order_id"]).payload == {"id": "json"}


@pytest.mark.parametrize(
    "body, field, reason",
    [
        ({"payload": {}}, "user_id", "required"),
        ({"user_id": "nope", "payload": {}}, "user_id", "uuid"),
        ({"user_id": 42, "payload": {}}, "user_id", "uuid"),
        ({"user_id": USER}, "payload_json", "payload_json or payload is required"),
        ({"user_id": USER, "payload_json": "{not json"}, "payload_json", "not valid JSON"),
        ({"user_id": USER, "payload_json": "[1, 2]"}, "payload_json", "must hold a JSON object"),
        ({"user_id": USER, "payload_json": 7}, "payload_json", "JSON object"),
        ({"user_id": USER, "payload": [1]}, "payload", "JSON object"),
        ({"user_id": USER, "payload": {}, "order_id": "abc"}, "order_id", "uuid"),
        ({"user_id": USER, "payload": {}, "order_id": 5}, "order_id", "uuid"),
        ({"user_id": USER, "payload": {}, "status": "shipped"}, "status", "deleted"),
        ({"user_id": USER, "status": "deleted"}, "order_id", "required to delete"),
        ({"user_id": USER, "payload": {"amount": "lots"}}, "payload.amount", "not a number"),
        (
            {"user_id": USER, "payload": {"items": [{"price": "x"}]}},
            "payload.items[0].price",
            "not a number",
        ),
    ],
)
def test_invalid_input_is_400_naming_the_field(api, body, field, reason):
    assert_error(api.post("/orders?wait=false", body), 400, field, reason)
    assert not Order.objects.exists()


def test_every_invalid_field_is_listed(api):
    response = api.post("/orders", {"user_id": "x", "order_id": "y", "payload": {}})
    assert response.status_code == 400
    fields = {item["field"] for item in response.json()["errors"]}
    assert fields == {"user_id", "order_id"}


def test_malformed_json_is_400_naming_the_body(api):
    assert_error(api.post("/orders", None, raw=b'{"user_id": '), 400, "body", "malformed JSON")


def test_a_json_array_body_is_400(api):
    assert_error(api.post("/orders", [1, 2]), 400, "body")


def test_form_encoded_body_is_415(client):
    response = client.post("/orders", {"user_id": USER})
    assert_error(response, 415, "Content-Type")


def test_body_over_the_limit_is_413(api, settings):
    settings.API_MAX_BODY_BYTES = 200
    body = {"user_id": USER, "payload": {"note": "x" * 300}}
    body = assert_error(api.post("/orders", body), 413, "body", "200 bytes")
    assert not Order.objects.exists()


def test_django_request_data_too_big_is_413_json(client, settings):
    """A form body over DATA_UPLOAD_MAX_MEMORY_SIZE, refused by Django itself (the admin)."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 50
    response = client.post("/admin/login/", {"username": "x" * 100, "password": "y"})
    assert_error(response, 413, "body", "too large")


@pytest.mark.parametrize(
    "body, field, reason",
    [
        ({"user_id": USER, "payload_json": '{"x": NaN}'}, "payload_json", "NaN"),
        ({"user_id": USER, "payload_json": '{"x": -Infinity}'}, "payload_json", "Infinity"),
        ({"user_id": USER, "payload": {"id": "a\u0000b"}}, "payload", "NUL"),
        ({"user_id": USER, "payload": {"a\u0000": 1}}, "payload", "NUL"),
        ({"user_id": USER, "payload": {"items": [{"sku": ["\u0000"]}]}}, "payload", "NUL"),
        ({"user_id": USER, "payload_json": '{"id": "a\\u0000b"}'}, "payload_json", "NUL"),
        ({"user_id": USER, "payload": {"id": "\ud800"}}, "payload", "surrogate"),
        (
            {"user_id": USER, "payload_json": "[" * 5000 + "]" * 5000},
            "payload_json",
            "nested deeper",
        ),
        (
            {"user_id": USER, "payload": {"items": [{"price": "1e999999", "qty": "1e999999"}]}},
            "payload.amount",
            "",
        ),
    ],
)
def test_input_postgresql_or_decimal_would_choke_on_is_400(api, body, field, reason):
    """NaN/Infinity, NUL characters, unpaired surrogates, deep nesting and amounts that
    overflow a decimal are refused before any write (they used to be 500s)."""
    raw = json.dumps(body).encode()
    assert_error(api.post("/orders?wait=false", None, raw=raw), 400, field, reason)
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b'{"user_id": "%s", "payload": {"x": NaN}}' % USER.encode(), "NaN"),
        (b'{"user_id": "%s", "payload": {"x": Infinity}}' % USER.encode(), "Infinity"),
        (b'{"payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested deeper"),
        (b'{"payload": ' + b'{"a":' * 150 + b"1" + b"}" * 150 + b"}", "nested deeper"),
    ],
)
def test_a_body_with_nan_or_deep_nesting_is_400_naming_the_body(api, raw, reason):
    assert_error(api.post("/orders?wait=false", None, raw=raw), 400, "body", reason)
    assert not Order.objects.exists()


def test_an_order_whose_event_would_exceed_the_broker_limit_is_413(api):
    """The body is within API_MAX_BODY_BYTES, but its event exceeds MAX_EVENT_BYTES: it
    could never be published, so it is refused before anything is written."""
    body = {"user_id": USER, "payload": {"note": "x" * (MAX_EVENT_BYTES + 1000)}}
    assert_error(api.post("/orders?wait=false", body), 413, "payload", str(MAX_EVENT_BYTES))
    assert not Order.objects.exists()
    assert not OutboxEvent.objects.exists()


def test_an_update_whose_event_would_exceed_the_limit_is_413_and_changes_nothing(api, monkeypatch):
    order = OrderFactory(user_id=USER, version=1)
    monkeypatch.setattr(messages, "MAX_EVENT_BYTES", 2000)
    body = {"order_id": str(order.order_id), "user_id": USER, "payload": {"note": "x" * 3000}}
    assert_error(api.post("/orders?wait=false", body), 413, "payload", "2000")
    order.refresh_from_db()
    assert order.version == 1
    assert not OutboxEvent.objects.exists()


def test_get_on_an_unknown_url_is_404_json(api):
    assert_error(api.get("/nothing/here"), 404, "path")


def test_unsupported_method_is_405_json(client):
    assert_error(client.delete("/orders"), 405, "method")


# -- POST /orders: updates and deletes ---------------------------------------------------


def test_update_replaces_payload_recomputes_amount_and_bumps_version(api):
    order = OrderFactory(user_id=USER, payload={"id": "U-1", "amount": 1})
    body = {"order_id": str(order.order_id), "user_id": USER, "payload_json": {"amount": 7}}
    response = api.post("/orders?wait=false", body)
    assert response.status_code == 202
    assert response.json() == {"order_id": str(order.order_id), "status": "pending"}
    order.refresh_from_db()
    assert (order.status, order.version, order.payload) == ("updated", 2, {"amount": 7})
    assert str(order.amount) == "7.00"


def test_status_deleted_soft_deletes_and_keeps_the_data(api):
    order = OrderFactory(user_id=USER, payload={"id": "D-1", "amount": 3})
    body = {"order_id": str(order.order_id), "user_id": USER, "status": "deleted"}
    assert api.post("/orders?wait=false", body).status_code == 202
    order.refresh_from_db()
    assert (order.status, order.version, order.payload) == (
        "deleted",
        2,
        {"id": "D-1", "amount": 3},
    )
    assert json.loads(OutboxEvent.objects.get(order_id=order.order_id).value)["status"] == "deleted"


def test_update_of_an_unknown_order_is_404(api):
    body = {"order_id": str(uuid.uuid4()), "user_id": USER, "payload": {}}
    assert_error(api.post("/orders", body), 404, "order_id", "no order")


def test_update_of_another_users_order_is_404(api):
    order = OrderFactory()
    body = {"order_id": str(order.order_id), "user_id": USER, "payload": {}}
    assert_error(api.post("/orders", body), 404, "order_id")
    order.refresh_from_db()
    assert order.version == 1


@pytest.mark.parametrize("change", [{"payload": {"amount": 2}}, {"status": "deleted"}])
def test_change_of_a_deleted_order_is_409(api, change):
    order = OrderFactory(user_id=USER, status=OrderStatus.DELETED, version=2)
    body = {"order_id": str(order.order_id), "user_id": USER, **change}
    assert_error(api.post("/orders", body), 409, "order_id", "deleted")
    order.refresh_from_db()
    assert order.version == 2
    assert not OutboxEvent.objects.exists()


# -- POST /orders: waiting for the ACK ---------------------------------------------------


@pytest.mark.parametrize(
    "query, headers",
    [("?wait=false", {}), ("?wait=0", {}), ("", {"Prefer": "respond-async"})],
)
def test_opting_out_of_the_wait_answers_202_at_once(api, query, headers, settings):
    settings.ORDER_ACK_WAIT_TIMEOUT = 30  # would fail the test's pace if it waited
    response = api.post(f"/orders{query}", {"user_id": USER, "payload": {}}, headers=headers)
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    assert response["Preference-Applied"] == "respond-async"


def test_a_wait_that_times_out_answers_202_pending(api, settings):
    """No worker is running: the ACK never comes, the event stays safe in the outbox."""
    settings.ORDER_ACK_WAIT_TIMEOUT = 0.3
    response = api.post("/orders", {"user_id": USER, "payload": {}})
    assert response.status_code == 202
    order_id = response.json()["order_id"]
    assert response.json() == {"order_id": order_id, "status": "pending"}
    assert OutboxEvent.objects.filter(order_id=order_id).count() == 1


def test_an_unreadable_wait_parameter_is_400(api):
    assert_error(api.post("/orders?wait=maybe", {"user_id": USER, "payload": {}}), 400, "wait")


class AckWaits:
    """The ACK waits of this process's listener: the timeout of each, and the ACK status a
    stand-in worker answers just before each wait begins (None: no ACK comes)."""

    def __init__(self):
        self.timeouts: list[float] = []
        self.answer: str | None = None


@pytest.fixture
def ack_waits(monkeypatch, kafka_bootstrap) -> AckWaits:
    assert process_listener.ack_listener().ready.wait(15), (
        "the ACK listener did not position itself"
    )
    waits = AckWaits()
    wait_for = AckListener.wait_for

    def recorded(listener, event_id, timeout, **match):
        waits.timeouts.append(timeout)
        if waits.answer is not None:
            ack = OrderAck(event_id, None, waits.answer, "2026-01-01T00:00:00Z")
            listener.deliver(ack)
        return wait_for(listener, event_id, timeout, **match)

    monkeypatch.setattr(AckListener, "wait_for", recorded)
    return waits


@pytest.mark.parametrize(
    "configured, prefer, longest",
    [(30, "wait=0.5", 0.5), (0.3, "wait=60", 0.3), (30, "handling=lenient, wait=0.5", 0.5)],
)
def test_prefer_wait_waits_at_most_n_seconds(api, settings, ack_waits, configured, prefer, longest):
    """`Prefer: wait=N` waits for the ACK at most N seconds, never longer than
    ORDER_ACK_WAIT_TIMEOUT; without an ACK in that time the answer is the 202."""
    settings.ORDER_ACK_WAIT_TIMEOUT = configured
    body = {"user_id": USER, "payload": {}}
    response = api.post("/orders", body, headers={"Prefer": prefer})
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending"
    (timeout,) = ack_waits.timeouts
    assert 0 <= timeout <= longest
    assert "Preference-Applied" not in response  # it did wait


def test_prefer_wait_answers_the_ack_that_comes_within_it(api, settings, ack_waits):
    settings.ORDER_ACK_WAIT_TIMEOUT = 30
    ack_waits.answer = "created"
    response = api.post("/orders", {"user_id": USER, "payload": {}}, headers={"Prefer": "wait=5"})
    assert response.status_code == 200, response.content
    assert response.json() == {"order_id": response.json()["order_id"], "status": "created"}
    assert 0 < ack_waits.timeouts[0] <= 5


@pytest.mark.parametrize("prefer", ["wait=soon", "wait=1e999x"])
def test_a_prefer_wait_that_is_no_number_is_400_naming_prefer(api, prefer):
    response = api.post("/orders", {"user_id": USER, "payload": {}}, headers={"Prefer": prefer})
    assert_error(response, 400, "Prefer", "wait=")


@pytest.mark.parametrize("prefer", ["wait=", 'wait=""', "handling=lenient, wait="])
def test_an_empty_prefer_wait_is_400_naming_prefer(api, settings, prefer):
    """As an empty `?wait=` is: it was ignored, and the request waited the full timeout."""
    settings.ORDER_ACK_WAIT_TIMEOUT = 0.3
    response = api.post("/orders", {"user_id": USER, "payload": {}}, headers={"Prefer": prefer})
    assert_error(response, 400, "Prefer", "wait=")
    assert not Order.objects.exists()


@pytest.fixture
def ack_topic_missing(settings):
    """This process's ACK listener on a topic that does not exist: it never positions
    itself. Its `ready` event is watched (WatchedEvent); stopped after the test."""
    settings.ORDERS_ACK_TOPIC = f"test.orders.ack.missing.{uuid.uuid4().hex[:8]}"
    listener = process_listener.ack_listener()
    listener.ready = WatchedEvent()
    yield listener
    listener.stop()


def test_a_post_that_would_wait_for_an_unready_ack_listener_answers_202(
    api, settings, ack_topic_missing
):
    """No ACK topic (yet), so no positioned listener to see the ACK: the POST waits for the
    listener at most ACK_LISTENER_READY_WAIT, not the whole ACK timeout, then writes the
    order and answers 202."""
    settings.ORDER_ACK_WAIT_TIMEOUT = 30
    response = api.post("/orders", {"user_id": USER, "payload": {}})
    assert response.status_code == 202, response.content
    order_id = response.json()["order_id"]
    assert response.json() == {"order_id": order_id, "status": "pending"}
    assert ack_topic_missing.ready.timeouts == [ack_wait_gate.ACK_LISTENER_READY_WAIT]
    assert ack_topic_missing.ready.woken == [False]
    assert OutboxEvent.objects.filter(order_id=order_id).count() == 1


# -- Idempotency-Key ---------------------------------------------------------------------


def test_a_repeated_idempotency_key_returns_the_first_order(api):
    headers = {"Idempotency-Key": "retry-1"}
    body = {"user_id": USER, "payload": {"id": "I-1"}}
    first = api.post("/orders?wait=false", body, headers=headers)
    again = api.post("/orders?wait=false", body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["order_id"] == first.json()["order_id"]
    assert again["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    assert OutboxEvent.objects.count() == 1


def test_the_idempotency_key_is_per_user(api):
    headers = {"Idempotency-Key": "same-key"}
    first = api.post("/orders?wait=false", {"user_id": USER, "payload": {}}, headers=headers)
    other = api.post(
        "/orders?wait=false", {"user_id": str(uuid.uuid4()), "payload": {}}, headers=headers
    )
    assert first.json()["order_id"] != other.json()["order_id"]
    assert Order.objects.count() == 2


def test_an_idempotency_key_reused_with_another_body_is_422(api):
    headers = {"Idempotency-Key": "k-2"}
    api.post("/orders?wait=false", {"user_id": USER, "payload": {"amount": 1}}, headers=headers)
    response = api.post(
        "/orders?wait=false", {"user_id": USER, "payload": {"amount": 2}}, headers=headers
    )
    assert_error(response, 422, "Idempotency-Key", "different request")
    assert Order.objects.count() == 1


@pytest.fixture
def key_lookups_meet(monkeypatch):
    """Two requests with the same Idempotency-Key both find it unused before either one
    writes: after its first lookup each waits for the other (a retry sent twice at once)."""
    barrier = threading.Barrier(2, timeout=30)
    met = threading.local()
    find = services.idempotency_find

    def find_then_meet(**kwargs):
        record = find(**kwargs)
        if record is None and not getattr(met, "done", False):
            met.done = True
            barrier.wait()
        return record

    monkeypatch.setattr(services, "idempotency_find", find_then_meet)


def post_at_once(body: dict, headers: dict, *, count: int = 2) -> list:
    """POST `body` from `count` threads at once (each its own client and connection); the
    responses, or the exception a request raised."""
    results: list = [None] * count

    def send(index: int) -> None:
        try:
            results[index] = Client().post(
                "/orders?wait=false", json.dumps(body), "application/json", headers=headers
            )
        except Exception as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["create", "update"])
def test_two_requests_with_one_idempotency_key_at_once_make_one_change(change, key_lookups_meet):
    """Both answer with the same order; one of them is the replay; one order, one event,
    one key (the unique index stops the second write; it answers as the first did)."""
    body = {"user_id": USER, "payload": {"amount": 7}}
    if change == "update":
        order = OrderFactory(user_id=USER)
        body["order_id"] = str(order.order_id)
    responses = post_at_once(body, {"Idempotency-Key": f"sent-twice-{change}"})
    assert [getattr(r, "status_code", r) for r in responses] == [202, 202]
    assert len({r.json()["order_id"] for r in responses}) == 1
    assert sorted(r.get("Idempotent-Replayed", "") for r in responses) == ["", "true"]
    assert IdempotencyKey.objects.count() == 1
    assert OutboxEvent.objects.count() == 1
    if change == "update":
        order.refresh_from_db()
        assert order.version == 2
    else:
        assert Order.objects.count() == 1


def test_an_update_replayed_by_key_is_applied_once(api):
    order = OrderFactory(user_id=USER)
    body = {"order_id": str(order.order_id), "user_id": USER, "payload": {"amount": 5}}
    headers = {"Idempotency-Key": "update-once"}
    for _ in range(3):
        assert api.post("/orders?wait=false", body, headers=headers).status_code == 202
    order.refresh_from_db()
    assert order.version == 2
    assert IdempotencyKey.objects.get().operation == "updated"


def test_an_overlong_idempotency_key_is_400(api):
    headers = {"Idempotency-Key": "k" * 300}
    assert_error(
        api.post("/orders?wait=false", {"user_id": USER, "payload": {}}, headers=headers),
        400,
        "Idempotency-Key",
    )


@pytest.mark.parametrize(
    "key",
    [
        "ключ-1",  # UTF-8 text (as the test client passes it)
        "clé".encode().decode("latin-1"),  # the same bytes as a real server hands them over
        "\xe9t\xe9",  # raw latin-1 bytes: were accepted while UTF-8 was not (inconsistent)
        "tab\tinside",
    ],
)
def test_an_idempotency_key_outside_printable_ascii_is_400(api, key):
    headers = {"Idempotency-Key": key}
    assert_error(
        api.post("/orders?wait=false", {"user_id": USER, "payload": {}}, headers=headers),
        400,
        "Idempotency-Key",
        "ASCII",
    )


@pytest.mark.parametrize("key", ["a", "order 42 / retry #1", "~" * 255])
def test_an_idempotency_key_of_printable_ascii_is_accepted(api, key):
    headers = {"Idempotency-Key": key}
    response = api.post("/orders?wait=false", {"user_id": USER, "payload": {}}, headers=headers)
    assert response.status_code == 202, response.content


# -- GET /orders/{order_id} --------------------------------------------------------------


def test_get_answers_the_order_view(api):
    order = OrderFactory(user_id=USER, payload={"id": "G-1", "amount": 10})
    response = api.get(f"/orders/{order.order_id}")
    assert response.status_code == 200
    view = response.json()["order"]
    assert view == {
        "order_id": str(order.order_id),
        "user_id": USER,
        "amount": 10.0,
        "status": "new",
        "payload_json": {"id": "G-1", "amount": 10},
        "created_at": order.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": order.updated_at.isoformat().replace("+00:00", "Z"),
        "bucket": order.order_id.bytes[0] % 4,
        "processing": "pending",  # no ACK recorded yet
        "reason": None,
        "version": None,
    }


def test_get_says_what_the_worker_did_from_what_the_ack_recorder_wrote(api):
    """The recorded outcome answers the row's version; an older one leaves it pending."""
    rejected = OrderFactory(
        user_id=USER,
        version=2,
        outcome="rejected",
        outcome_version=2,
        outcome_reason="amount: too big",
        applied_version=1,
    )
    behind = OrderFactory(
        user_id=USER, version=3, outcome="done", outcome_version=2, applied_version=2
    )
    deleted = OrderFactory(
        user_id=USER, version=2, outcome="deleted", outcome_version=2, applied_version=2
    )

    def processing(order):
        view = api.get(f"/orders/{order.order_id}").json()["order"]
        return view["processing"], view["reason"], view["version"]

    assert processing(rejected) == ("rejected", "amount: too big", 1)
    assert processing(behind) == ("pending", None, 2)
    assert processing(deleted) == ("deleted", None, 2)
    listed = api.get("/orders", {"user_id": USER}).json()["results"]
    assert {o["processing"] for o in listed} == {"rejected", "pending", "deleted"}


def test_the_workers_redis_result_of_the_rows_version_is_done_before_its_ack_is_recorded():
    """The result is written before the ACK, and is all an order whose ACKs predate the
    recorder has: its version's state counts like an ACK of it (never against a newer
    recorded outcome)."""
    fresh, older = OrderFactory(version=2), OrderFactory(version=3)

    def processing(order, result):
        view = order_view(order=order, result=result)
        return view["processing"], view["reason"], view["version"]

    assert processing(fresh, a_result_of(fresh)) == ("done", None, 2)
    assert processing(fresh, a_result_of(fresh, order_status="deleted")) == ("deleted", None, 2)
    assert processing(older, a_result_of(older, version=2)) == ("pending", None, 2)
    assert processing(older, a_result_of(older, version=0)) == ("pending", None, None)
    rejected = OrderFactory(
        version=2, outcome="rejected", outcome_version=2, outcome_reason="bad", applied_version=1
    )
    assert processing(rejected, a_result_of(rejected, version=1)) == ("rejected", "bad", 1)


def test_get_merges_the_workers_redis_result(api):
    order = OrderFactory(user_id=USER, payload={"id": "R-1", "amount": 10})
    result = {
        "order_id": str(order.order_id),
        "status": "updated",
        "processed_at": "2026-01-02T03:04:05Z",
        "order_status": "done",
        "user_id": USER,
        "amount": 42.5,
        "payload": {"id": "R-1", "amount": 42.5},
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-02T03:04:05Z",
        "bucket": 3,
    }
    redis = get_redis_connection("default")
    key = OrderResult.redis_key(str(order.order_id))
    redis.set(key, json.dumps(result), ex=60)
    try:
        view = api.get(f"/orders/{order.order_id}").json()["order"]
    finally:
        redis.delete(key)
    assert view["status"] == "done"
    assert view["amount"] == 42.5
    assert view["payload_json"] == {"id": "R-1", "amount": 42.5}
    assert (view["created_at"], view["updated_at"]) == (result["created_at"], result["updated_at"])
    assert view["bucket"] == 3
    assert view["user_id"] == USER


def test_get_answers_from_the_database_when_redis_is_down(api, settings):
    order = OrderFactory(user_id=USER)
    cache = dict(settings.CACHES["default"])
    cache["LOCATION"] = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CACHES = {"default": cache}
    response = api.get(f"/orders/{order.order_id}")
    assert response.status_code == 200
    assert response.json()["order"]["status"] == "new"


def test_get_of_a_non_uuid_is_400(api):
    assert_error(api.get("/orders/not-a-uuid"), 400, "order_id", "uuid")


def test_get_of_an_unknown_order_is_404(api):
    assert_error(api.get(f"/orders/{uuid.uuid4()}"), 404, "order_id")


def test_get_shows_a_deleted_order(api):
    order = OrderFactory(status=OrderStatus.DELETED)
    assert api.get(f"/orders/{order.order_id}").json()["order"]["status"] == "deleted"


# -- GET /orders/by-external/{external_id}?user_id= --------------------------------------


def test_by_external_answers_the_newest_match_of_the_user(api):
    older = OrderFactory(user_id=USER, payload={"id": "X-9"})
    newer = OrderFactory(
        user_id=USER, payload={"id": "X-9"}, created_at=older.created_at + timedelta(seconds=1)
    )
    OrderFactory(payload={"id": "X-9"})  # another user's
    response = api.get("/orders/by-external/X-9", {"user_id": USER})
    assert response.status_code == 200
    assert response.json()["order"]["order_id"] == str(newer.order_id)


def test_by_external_matches_a_numeric_payload_id(api):
    order = OrderFactory(user_id=USER, payload={"id": 12345, "amount": 1})
    response = api.get("/orders/by-external/12345", {"user_id": USER})
    assert response.json()["order"]["order_id"] == str(order.order_id)


@pytest.mark.parametrize("params", [{}, {"user_id": "bad"}])
def test_by_external_needs_a_valid_user_id(api, params):
    assert_error(api.get("/orders/by-external/X-1", params), 400, "user_id")


@pytest.mark.parametrize("external_id", ["2024/001", "a/", "/", "", " "])
def test_by_external_finds_an_id_with_slashes_or_an_empty_one(api, external_id):
    """Stored, so found: such ids were a 404 (path) whether or not the slash was encoded."""
    order = OrderFactory(user_id=USER, payload={"id": external_id, "amount": 1})
    OrderFactory(user_id=USER, payload={"amount": 1})  # no id: not an empty one
    for path in (quote(external_id, safe=""), quote(external_id)):
        response = api.get(f"/orders/by-external/{path}", {"user_id": USER})
        assert response.status_code == 200, (path, response.content)
        assert response.json()["order"]["order_id"] == str(order.order_id)


def test_by_external_without_a_match_is_404(api):
    OrderFactory(user_id=USER, payload={"id": "X-1"})
    assert_error(
        api.get("/orders/by-external/X-2", {"user_id": USER}), 404, "external_id", "no order"
    )


# -- GET /orders (list) ------------------------------------------------------------------


def test_list_is_paginated_filtered_and_newest_first(api):
    """Pages hold the user's orders in the filtered status, newest first; orders created
    at the same instant come in order_id order, so no order is on two pages."""
    start = OrderFactory().created_at  # someone else's order
    ages = [timedelta(minutes=5), timedelta(0), timedelta(minutes=3), timedelta(minutes=3)]
    mine = [OrderFactory(user_id=USER, created_at=start - age) for age in ages]
    OrderFactory(user_id=USER, status=OrderStatus.DELETED, created_at=start)
    query = {"user_id": USER, "status": "new", "page_size": 3}
    first = api.get("/orders", query).json()
    second = api.get("/orders", query | {"page": 2}).json()
    assert first["count"] == second["count"] == 4
    assert (len(first["results"]), len(second["results"])) == (3, 1)
    assert first["next"] and not second["next"]
    listed = [o["order_id"] for o in first["results"] + second["results"]]
    newest_first = sorted(mine, key=lambda o: (-o.created_at.timestamp(), str(o.order_id)))
    assert listed == [str(o.order_id) for o in newest_first]


def test_list_with_a_bad_filter_is_400(api):
    assert_error(api.get("/orders", {"status": "weird"}), 400, "status")


# -- /health, docs and schema ------------------------------------------------------------


def test_health(api):
    assert api.get("/health").json() == {"status": "ok"}


def test_schema_documents_bodies_errors_and_examples(api):
    schema = api.get("/api/schema/", headers={"Accept": "application/json"}).json()
    post = schema["paths"]["/orders"]["post"]
    assert {"200", "202", "400", "404", "409", "413", "422"} <= set(post["responses"])
    assert post["requestBody"]["content"]["application/json"]["examples"]
    assert "/orders/{order_id}" in schema["paths"]
    assert "/orders/by-external/{external_id}" in schema["paths"]
    assert {"Error", "OrderView", "OrderUpsertInput"} <= set(schema["components"]["schemas"])
    params = {p["name"] for p in post["parameters"]}
    assert {"wait", "Prefer", "Idempotency-Key"} <= params


# -- Edges: input that answered 5xx, 404 or was ignored ----------------------------------


@pytest.mark.parametrize(
    "payload_json",
    [
        '{"x": 1e400}',
        '{"x": -1e400}',
        '{"items": [{"price": 1e400}]}',
        '{"id": "A", "items": [{"price": 1, "qty": 1e400}]}',
    ],
)
def test_a_payload_json_number_that_overflows_to_infinity_is_400(api, payload_json):
    """Python reads 1e400 as float('inf'), which neither JSON nor PostgreSQL can hold."""
    body = {"user_id": USER, "payload_json": payload_json}
    assert_error(api.post("/orders?wait=false", body), 400, "payload_json", "finite")
    assert not Order.objects.exists()


def test_a_body_number_that_overflows_to_infinity_is_400_naming_the_body(api):
    raw = b'{"user_id": "%s", "payload": {"x": 1e400}}' % USER.encode()
    assert_error(api.post("/orders?wait=false", None, raw=raw), 400, "body", "finite")
    assert not Order.objects.exists()


def test_an_unencodable_status_is_400_with_a_body_that_encodes(api):
    """The error echoes the value; an unpaired surrogate is escaped, not a 500."""
    raw = b'{"user_id": "%s", "payload": {}, "status": "\\ud800"}' % USER.encode()
    response = api.post("/orders?wait=false", None, raw=raw)
    body = assert_error(response, 400, "status", "\\ud800")
    assert body["reason"].encode("utf-8")
    assert not Order.objects.exists()


def test_by_external_with_a_nul_character_is_400_naming_external_id(api):
    """No stored payload.id can hold NUL (POST refuses it), and PostgreSQL cannot compare it."""
    response = api.get("/orders/by-external/a%00b", {"user_id": USER})
    assert_error(response, 400, "external_id", "null")


@pytest.mark.parametrize("charset", ["base64", "hex", "zlib", "rot13"])
def test_a_body_charset_that_is_not_a_text_encoding_is_415(client, charset):
    """Django keeps any charset Python knows, and bytes.decode("base64") is a LookupError."""
    body = json.dumps({"user_id": USER, "payload": {"amount": 1}}).encode()
    content_type = f"application/json; charset={charset}"
    response = client.generic("POST", "/orders", body, content_type=content_type)
    assert_error(response, 415, "Content-Type", "charset")
    assert not Order.objects.exists()


@pytest.mark.parametrize("charset", ["base64", "hex", "zlib"])
def test_a_non_text_charset_with_a_query_string_is_415(charset):
    """Through the WSGI entry point the API server serves (Django's test client builds requests
    itself): Django decoded the query string with the charset while building the request,
    a 500 before any middleware ran."""
    from orderstream.wsgi import application

    body = json.dumps({"user_id": USER, "payload": {"amount": 1}}).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/orders",
        "QUERY_STRING": "wait=false",
        "CONTENT_TYPE": f"application/json; charset={charset}",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    wsgiref.util.setup_testing_defaults(environ)
    started = {}
    chunks = application(environ, lambda status, headers: started.update(status=status))
    answer = json.loads(b"".join(chunks))
    assert started["status"].startswith("415")
    assert answer["errors"][0]["field"] == "Content-Type"
    assert charset in answer["error"]


@pytest.mark.parametrize("page", ["0", "-1", "abc", "99999"])
def test_list_with_a_bad_page_is_400_naming_page(api, page):
    OrderFactory(user_id=USER)
    assert_error(api.get("/orders", {"user_id": USER, "page": page}), 400, "page")


def test_list_with_an_empty_user_id_is_400(api):
    OrderFactory()
    assert_error(api.get("/orders", {"user_id": ""}), 400, "user_id", "uuid")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"user_id": USER, "payload": None}, "payload"),
        ({"user_id": USER, "payload_json": None}, "payload_json"),
        ({"user_id": USER, "payload_json": None, "payload": None}, "payload_json"),
    ],
)
def test_a_null_payload_is_400_naming_the_field_sent(api, body, field):
    assert_error(api.post("/orders?wait=false", body), 400, field, "JSON object")
    assert not Order.objects.exists()


def test_a_null_payload_is_accepted_with_a_delete(api):
    order = OrderFactory(user_id=USER)
    body = {"order_id": str(order.order_id), "user_id": USER, "status": "deleted", "payload": None}
    assert api.post("/orders?wait=false", body).status_code == 202
    order.refresh_from_db()
    assert order.status == OrderStatus.DELETED


# The amount columns of both apps: numeric(20, 2), at most 18 integer digits.
LARGEST_AMOUNT = "999999999999999999.99"
# 2**46 + 0.01: a float holds it as 70368744177664.015625, shown as 70368744177664.02.
BEYOND_FLOAT = "70368744177664.01"


def exact_amount(response) -> Decimal:
    """The order's amount as the JSON text of the answer says it, read without a float."""
    return json.loads(response.content, parse_float=Decimal)["order"]["amount"]


def a_result_of(order: Order, **changes) -> OrderResult:
    values = {
        "order_id": str(order.order_id),
        "status": "created",
        "processed_at": "2026-01-02T03:04:05Z",
        "order_status": "done",
        "user_id": str(order.user_id),
        "amount": order.amount,
        "payload": order.payload,
        "created_at": "2026-01-02T03:04:05Z",
        "updated_at": "2026-01-02T03:04:05Z",
        "bucket": order.bucket,
        "version": order.version,
    }
    return OrderResult(**(values | changes))


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (BEYOND_FLOAT, BEYOND_FLOAT),
        (LARGEST_AMOUNT, LARGEST_AMOUNT),
        ("-" + LARGEST_AMOUNT, "-" + LARGEST_AMOUNT),
        ("5", "5.00"),
        ("0", "0.00"),
        ("12.5", "12.50"),
    ],
)
@pytest.mark.parametrize("with_result", [False, True], ids=["row", "redis"])
def test_get_renders_the_amount_as_a_number_with_exactly_the_stored_digits(
    api, amount, text, with_result
):
    """Two places, the column's digits, a JSON number (not a float, not a string), the same
    whether the worker's Redis result answers or the row alone (was 70368744177664.02,
    1e+18, 5.0)."""
    order = OrderFactory(user_id=USER, amount=Decimal(amount))
    order.refresh_from_db()
    redis = get_redis_connection("default")
    key = OrderResult.redis_key(str(order.order_id))
    if with_result:
        redis.set(key, a_result_of(order, amount=Decimal(amount)).to_bytes(), ex=60)
    try:
        get = api.get(f"/orders/{order.order_id}")
        listing = api.get("/orders", {"user_id": USER})
    finally:
        redis.delete(key)
    assert get.json()["order"]["status"] == ("done" if with_result else "new")
    assert b'"amount":' + text.encode() + b"," in get.content
    assert str(exact_amount(get)) == text
    assert b'"amount":' + text.encode() + b"," in listing.content


def test_the_browsable_api_shows_the_exact_amount(admin_client):
    order = OrderFactory(user_id=USER, amount=Decimal(LARGEST_AMOUNT))
    page = admin_client.get(f"/orders/{order.order_id}", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert f"&quot;amount&quot;: {LARGEST_AMOUNT}," in page.content.decode()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"user_id": "%s", "payload": {"amount": %s}}', "body"),
        (b'{"user_id": "%s", "payload": {"items": [{"price": %s}]}}', "body"),
        (b'{"user_id": "%s", "payload_json": "{\\"amount\\": %s}"}', "payload_json"),
    ],
)
@pytest.mark.parametrize("number", [BEYOND_FLOAT, LARGEST_AMOUNT, "1e-400"])
def test_a_json_number_no_float_holds_exactly_is_400_not_silently_changed(api, raw, field, number):
    """Payloads are stored as JSON with float numbers: 70368744177664.01 sent as a number
    used to be accepted as 70368744177664.02 (and 999999999999999999.99 as 1e18). It is
    refused, naming the number; as a string it is exact."""
    body = raw % (USER.encode(), number.encode())
    response = api.post("/orders?wait=false", None, raw=body)
    assert_error(response, 400, field, f"{number} has more digits than")
    assert "send it as a string" in response.json()["reason"]
    assert not Order.objects.exists()


@pytest.mark.parametrize("number", ["9.9", "5.00", "0.30000000000000004", "-0.0"])
def test_a_json_number_a_float_holds_exactly_is_accepted(api, number):
    raw = b'{"user_id": "%s", "payload": {"n": %s}}' % (USER.encode(), number.encode())
    assert api.post("/orders?wait=false", None, raw=raw).status_code == 202
    assert Order.objects.get().payload == {"n": float(number)}


def test_a_string_amount_beyond_a_float_is_stored_exactly(api):
    body = {"user_id": USER, "payload": {"amount": BEYOND_FLOAT}}
    response = api.post("/orders?wait=false", body)
    assert response.status_code == 202, response.content
    order = Order.objects.get()
    assert str(order.amount) == BEYOND_FLOAT
    assert exact_amount(api.get(f"/orders/{order.order_id}")) == Decimal(BEYOND_FLOAT)
    event = OutboxEvent.objects.get(order_id=order.order_id)
    assert b'"amount":"' + BEYOND_FLOAT.encode() + b'"' in event.value.encode()


def test_the_amount_limit_is_what_both_amount_columns_hold():
    """`order_fields.LARGEST_AMOUNT` is the largest value of the API's and the worker's column."""
    for model in (Order, ProcessedOrder):
        field = model._meta.get_field("amount")
        largest = Decimal(10) ** (field.max_digits - field.decimal_places) - CENT
        assert (field.decimal_places, largest) == (2, order_fields.LARGEST_AMOUNT)
    assert order_fields.LARGEST_AMOUNT == Decimal(LARGEST_AMOUNT)


@pytest.mark.parametrize(
    "data",
    [
        {"payload": {"amount": "999999999999999999.995"}},
        {"payload": {"amount": "1000000000000000000"}},
        {"payload": {"amount": "-999999999999999999.995"}},
        {"payload": {"items": [{"price": "999999999999999999.995"}]}},
        {"payload": {"items": [{"price": "333333333333333333.332", "qty": 3}]}},
        {"payload": {"items": [{"price": LARGEST_AMOUNT}, {"price": "0.01"}]}},
        {"payload_json": '{"amount": "999999999999999999.995"}'},
        {"payload_json": '{"items": [{"price": "999999999999999999.999", "qty": "1"}]}'},
    ],
)
def test_an_amount_that_does_not_fit_the_column_after_rounding_is_400(api, data):
    """Whatever the form: a number, a string, price x qty, inside payload_json."""
    response = api.post("/orders?wait=false", {"user_id": USER, **data})
    assert response.status_code == 400, response.content
    assert_error(response, 400, "payload.amount", "out of range")
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"amount": LARGEST_AMOUNT},
        {"amount": "999999999999999999.994"},
        {"amount": "-" + LARGEST_AMOUNT},
        {"items": [{"price": "333333333333333333.33", "qty": 3}]},
    ],
)
def test_the_largest_amounts_the_column_holds_are_stored_and_read_back(api, payload):
    """Accepted, stored exactly, and readable by GET and the list page that holds it."""
    response = api.post("/orders?wait=false", {"user_id": USER, "payload": payload})
    assert response.status_code == 202, response.content
    order_id = response.json()["order_id"]
    order = Order.objects.get(order_id=order_id)
    assert abs(order.amount) == Decimal(LARGEST_AMOUNT)
    get = api.get(f"/orders/{order_id}")
    assert get.status_code == 200, get.content
    assert exact_amount(get) == order.amount
    listing = api.get("/orders", {"user_id": USER})
    assert listing.status_code == 200, listing.content
    assert json.loads(listing.content, parse_float=Decimal)["results"][0]["amount"] == order.amount


@pytest.mark.parametrize("amount", [LARGEST_AMOUNT, "-" + LARGEST_AMOUNT])
def test_the_largest_amount_reads_back_once_the_worker_wrote_its_result(api, amount):
    """The worker's Redis result holds the amount with its digits: GET and the list page
    answer it exactly (they were 500s, then showed 1e+18)."""
    response = api.post("/orders?wait=false", {"user_id": USER, "payload": {"amount": amount}})
    assert response.status_code == 202, response.content
    order = Order.objects.get(order_id=response.json()["order_id"])
    result = OrderResult(
        order_id=str(order.order_id),
        status="created",
        processed_at="2026-01-02T03:04:05Z",
        order_status="done",
        user_id=USER,
        amount=Decimal(amount),
        payload=order.payload,
        created_at="2026-01-02T03:04:05Z",
        updated_at="2026-01-02T03:04:05Z",
        bucket=order.bucket,
        version=1,
    )
    redis = get_redis_connection("default")
    key = OrderResult.redis_key(str(order.order_id))
    redis.set(key, result.to_bytes(), ex=60)
    try:
        get = api.get(f"/orders/{order.order_id}")
        listing = api.get("/orders", {"user_id": USER})
    finally:
        redis.delete(key)
    assert get.status_code == 200, get.content
    assert get.json()["order"]["status"] == "done"
    assert b'"amount":' + amount.encode() + b"," in get.content
    assert exact_amount(get) == Decimal(amount)
    assert listing.status_code == 200, listing.content
    assert listing.json()["results"][0]["status"] == "done"
    assert b'"amount":' + amount.encode() + b"," in listing.content


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "1e30", '"12"', "null"])
def test_a_stored_result_with_an_unusable_amount_does_not_break_reads(api, amount):
    """One bad stored result never breaks a read: the row answers instead."""
    order = OrderFactory(user_id=USER, payload={"id": "B-1", "amount": 10})
    result = {
        "order_id": str(order.order_id),
        "status": "created",
        "processed_at": "2026-01-02T03:04:05Z",
        "order_status": "done",
        "user_id": USER,
        "amount": "AMOUNT",
        "payload": {},
        "created_at": "2026-01-02T03:04:05Z",
        "updated_at": "2026-01-02T03:04:05Z",
        "bucket": 1,
    }
    raw = json.dumps(result).replace('"AMOUNT"', amount)  # as the JSON text says
    redis = get_redis_connection("default")
    key = OrderResult.redis_key(str(order.order_id))
    redis.set(key, raw, ex=60)
    try:
        get = api.get(f"/orders/{order.order_id}")
        listing = api.get("/orders", {"user_id": USER})
    finally:
        redis.delete(key)
    assert get.status_code == 200, get.content
    assert listing.status_code == 200, listing.content


# The longest payload.id, in the characters that percent-encode longest: 4 UTF-8 bytes each,
# 12 characters in a URL (MAX_EXTERNAL_ID_BYTES; test_server_limits.py looks it up
# through the real server).
LONGEST_EXTERNAL_ID = "\N{GRINNING FACE}" * (order_fields.MAX_EXTERNAL_ID_BYTES // 4)


def test_the_longest_external_id_is_stored_and_found(api):
    """The md5 index (models.py) stores an id of any length; the lookup's URL is what
    bounds it (a 4 KB id was stored, then unreachable through gunicorn, the API's server
    then: a 414)."""
    external_id = LONGEST_EXTERNAL_ID
    created = api.post(
        "/orders?wait=false", {"user_id": USER, "payload": {"id": external_id, "amount": 1}}
    )
    assert created.status_code == 202, created.content
    found = api.get(f"/orders/by-external/{quote(external_id, safe='')}", {"user_id": USER})
    assert found.status_code == 200
    assert found.json()["order"]["order_id"] == created.json()["order_id"]
    assert_error(
        api.get(f"/orders/by-external/{quote(external_id[:-1])}", {"user_id": USER}),
        404,
        "external_id",
    )


@pytest.mark.parametrize(
    "body",
    [
        {"payload": {"id": "x" * (order_fields.MAX_EXTERNAL_ID_BYTES + 1)}},
        {"payload": {"id": "x" * 4800}},
        {"payload": {"id": LONGEST_EXTERNAL_ID + "x"}},
        {"payload": {"id": int("9" * (order_fields.MAX_EXTERNAL_ID_BYTES + 1))}},
        {"payload_json": json.dumps({"id": "\u00e9" * 513})},  # 1026 bytes in UTF-8
    ],
    ids=["ascii", "4800", "emoji", "number", "payload_json"],
)
def test_an_external_id_too_long_to_look_up_is_refused_at_write(api, body):
    """Accepted, then unreachable: GET /orders/by-external/<id> of a 4,800-character id
    answered the server of the time (gunicorn) with an HTML 414 (its request line is at
    most 4094 bytes)."""
    response = api.post("/orders?wait=false", {"user_id": USER, **body})
    assert_error(response, 400, "payload.id", f"at most {order_fields.MAX_EXTERNAL_ID_BYTES}")
    assert not Order.objects.exists()


def test_a_delete_is_not_refused_for_the_id_of_a_payload_it_ignores(api):
    order = OrderFactory(user_id=USER, payload={"id": "D-1", "amount": 1})
    response = api.post(
        "/orders?wait=false",
        {
            "order_id": str(order.order_id),
            "user_id": USER,
            "status": "deleted",
            "payload": {"id": "x" * 4800},
        },
    )
    assert response.status_code == 202, response.content


def test_the_schema_documents_the_idempotency_key_rule_and_415(api):
    schema = api.get("/api/schema/?format=json").json()
    post = schema["paths"]["/orders"]["post"]
    [key] = [p for p in post["parameters"] if p["name"] == "Idempotency-Key"]
    assert key["schema"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": "^[ -~]+$",
    }
    assert "415" in post["responses"]


CANONICAL = "7F1D6C1E-3A51-4C53-9D0E-6B7C1F2A9E10"  # upper case is canonical too
NOT_CANONICAL = [
    "{7f1d6c1e-3a51-4c53-9d0e-6b7c1f2a9e10}",
    "urn:uuid:7f1d6c1e-3a51-4c53-9d0e-6b7c1f2a9e10",
    "7f1d6c1e3a514c539d0e6b7c1f2a9e10",
    " 7f1d6c1e-3a51-4c53-9d0e-6b7c1f2a9e10 ",
    "７f1d6c1e-3a51-4c53-9d0e-6b7c1f2a9e10",  # a fullwidth digit
]


@pytest.mark.parametrize("text", NOT_CANONICAL)
def test_a_uuid_is_accepted_only_in_its_hyphenated_form(api, text):
    """Braces, urn:uuid:, no hyphens, surrounding spaces and non-ASCII digits were taken
    as the same uuid, while the README says anything but a uuid is a 400."""
    body = {"user_id": text, "payload": {}}
    assert_error(api.post("/orders?wait=false", body), 400, "user_id", "uuid")
    body = {"user_id": USER, "order_id": text, "payload": {}}
    assert_error(api.post("/orders?wait=false", body), 400, "order_id")
    assert_error(api.get("/orders", {"user_id": text}), 400, "user_id")
    assert api.get(f"/orders/{quote(text)}").status_code == 400


def test_a_uuid_in_upper_case_is_the_same_uuid(api):
    created = api.post("/orders?wait=false", {"user_id": CANONICAL, "payload": {}})
    assert created.status_code == 202, created.content
    order_id = created.json()["order_id"]
    assert api.get(f"/orders/{order_id.upper()}").status_code == 200
    assert api.get("/orders", {"user_id": CANONICAL}).json()["count"] == 1


# -- The schema says what the API does (found by the Schemathesis run, test_schema_fuzz) --


@pytest.mark.parametrize("query", ["?wait=", "?wait=%20false", "?wait=false%20"])
def test_an_empty_or_padded_wait_parameter_is_400(api, query):
    """`?wait=` waited and ` false` did not: the schema lists the values, nothing else."""
    assert_error(api.post(f"/orders{query}", {"user_id": USER, "payload": {}}), 400, "wait")


def test_the_schema_lists_the_values_of_wait(api):
    post = schema_of(api)["paths"]["/orders"]["post"]
    [wait] = [p for p in post["parameters"] if p["name"] == "wait"]
    assert set(wait["schema"]["enum"]) == {"true", "1", "yes", "on", "false", "0", "no", "off"}


def test_the_schema_makes_authentication_optional_while_api_tokens_is_empty(api, settings):
    """The API is open by default: `{}` (no credentials) is one of each operation's
    security requirements; it said a session cookie was required."""
    schema = schema_of(api)
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert {} in operation["security"], (method, path)
            assert {"bearerAuth": []} in operation["security"], (method, path)
    settings.API_TOKENS = ["a-token"]
    schema = schema_of(api)
    assert {} not in schema["paths"]["/orders/{order_id}"]["get"]["security"]
    assert {} in schema["paths"]["/health"]["get"]["security"]


def test_the_schema_requires_user_id_on_the_list_and_counts_pages_from_1(api):
    """GET /orders without user_id is a 400 (but for a staff login), and so is page=0."""
    get = schema_of(api)["paths"]["/orders"]["get"]
    params = {p["name"]: p for p in get["parameters"]}
    assert params["user_id"]["required"] is True
    assert params["page"]["schema"]["minimum"] == 1


def test_the_schema_requires_the_order_data_unless_the_request_deletes(api):
    """`{"user_id": ...}` alone is a 400, and so is a delete without order_id: the schema
    said user_id was the only required field and took any value as `payload`."""
    body = schema_of(api)["components"]["schemas"]["OrderUpsertInput"]
    assert body["properties"]["payload"]["type"] == "object"
    data_or_delete, delete_names_order = (item["anyOf"] for item in body["allOf"])
    assert [branch["required"] for branch in data_or_delete] == [
        ["payload_json"],
        ["payload"],
        ["status"],
    ]
    assert delete_names_order[1]["required"] == ["order_id"]
    assert_error(api.post("/orders?wait=false", {"user_id": USER}), 400, "payload_json")
    delete = {"user_id": USER, "status": "deleted", "payload": {}}
    assert_error(api.post("/orders?wait=false", delete), 400, "order_id")


def test_the_schema_gives_payload_json_text_a_format_of_its_own(api):
    """A string payload_json must hold a JSON object: format `json-object` says so (and
    lets the fuzz test generate such strings)."""
    body = schema_of(api)["components"]["schemas"]["OrderUpsertInput"]
    text = body["properties"]["payload_json"]["oneOf"][1]
    assert text == {
        "type": "string",
        "format": "json-object",
        "description": "a string holding a JSON object",
    }
    bad_text = {"user_id": USER, "payload_json": "x"}
    assert_error(api.post("/orders?wait=false", bad_text), 400, "payload_json", "not valid JSON")


@pytest.mark.parametrize(
    "query, field",
    [
        ({"page": ""}, "page"),
        ({"page_size": ""}, "page_size"),
        ({"page_size": "abc"}, "page_size"),
        ({"status": ""}, "status"),
    ],
)
def test_an_empty_page_status_or_a_page_size_that_is_no_integer_is_400(api, query, field):
    """`?page=` listed page 1, `?status=` every status and `?page_size=abc` the default
    size (DRF's leniency)."""
    assert_error(api.get("/orders", {"user_id": USER, **query}), 400, field)
