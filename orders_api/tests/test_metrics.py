"""GET /metrics of the API, in process: open, Prometheus text, the request counters and
the outbox gauges, which the relay moves. (The API processes, the relay's and the
worker's ports: orderstream/tests/test_metrics_processes.py.)"""

from __future__ import annotations

import socket
import time
import uuid

import pytest
from django.core.management import call_command

from devstack.ports import free_port
from orders_api.models import OutboxEvent
from orders_api.relay.loop import OutboxRelay
from orderstream.kafka import make_producer
from orderstream.metrics import MetricsPortInUse
from testkit.running import running
from testkit.scrape import Metrics

REQUESTS = "orderstream_http_requests_total"
ACK_WAITS = "orderstream_ack_waits_total"
DURATION = "orderstream_http_request_duration_seconds"


def scrape_api(client) -> Metrics:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return Metrics(response.content.decode())


@pytest.mark.django_db
def test_metrics_is_open_and_counts_requests_by_view_method_and_status(client, settings):
    """With API_TOKENS set, /metrics still answers without a token (as /health does)."""
    settings.API_TOKENS = ["secret"]
    before = scrape_api(client)
    assert client.get("/health").status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/no/such/path").status_code == 404
    assert client.get(f"/orders/{uuid.uuid4()}").status_code == 401  # no token
    after = scrape_api(client)

    assert after.since(before, REQUESTS, view="health", method="GET", status="200") == 2
    assert after.since(before, f"{DURATION}_count", view="health") == 2
    assert after.since(before, REQUESTS, view="unmatched", method="GET", status="404") == 1
    assert after.since(before, REQUESTS, view="orders-detail", method="GET", status="401") == 1
    assert after.since(before, REQUESTS, view="metrics", method="GET", status="200") == 1
    assert {"orderstream_outbox_depth", "orderstream_outbox_parked"} <= after.names()


@pytest.mark.django_db
def test_a_method_metrics_does_not_have_is_a_405_in_the_error_shape(client):
    response = client.post("/metrics")
    assert response.status_code == 405
    assert response.json()["field"] == "method"


@pytest.mark.django_db
def test_a_wait_without_a_ready_ack_listener_is_counted_as_no_listener(api):
    """No broker answers this test: the POST does not wait (202) and says why."""
    before = scrape_api(api.client)
    waited = api.create(wait=True)
    assert waited.status_code == 202
    assert waited["Ack-Wait-Skipped"] == "listener-not-ready"
    unasked = api.create(wait=False)
    assert unasked.status_code == 202
    assert "Ack-Wait-Skipped" not in unasked
    after = scrape_api(api.client)
    assert after.since(before, ACK_WAITS, outcome="no_listener") == 1
    assert after.since(before, ACK_WAITS, outcome="not_waited") == 1
    assert after.since(before, ACK_WAITS) == 2


@pytest.mark.django_db
def test_a_wait_beyond_the_waiter_budget_is_counted_as_busy_and_says_so(api, settings):
    """No slot left for a wait (ORDER_ACK_MAX_WAITERS): 202 at once, the header and the
    counter say why."""
    settings.ORDER_ACK_MAX_WAITERS = 0
    settings.ORDER_ACK_WAIT_TIMEOUT = 30  # would fail the test's pace if it waited
    before = scrape_api(api.client)
    response = api.create(wait=True)
    assert response.status_code == 202, response.content
    assert response["Ack-Wait-Skipped"] == "busy"
    assert "Preference-Applied" not in response  # the client's preference was not applied
    after = scrape_api(api.client)
    assert after.since(before, ACK_WAITS, outcome="busy") == 1
    assert after.since(before, ACK_WAITS) == 1


@pytest.mark.django_db(transaction=True)
def test_the_outbox_gauges_follow_the_relay(api, unique_topics, settings):
    """Writes without a relay pile up in the outbox (depth, oldest age); the relay
    publishes them (depth 0, its counters move by as many); a row the broker refuses for
    good is parked (the parked gauge and counter)."""
    settings.OUTBOX_RELAY_INTERVAL = 0.1
    started = time.monotonic()
    for _ in range(3):
        assert api.create().status_code == 202
    waiting = scrape_api(api.client)
    assert waiting.value("orderstream_outbox_depth") == 3
    age = waiting.value("orderstream_outbox_oldest_age_seconds")
    assert 0 < age <= time.monotonic() - started
    assert waiting.value("orderstream_outbox_parked") == 0

    relay = OutboxRelay()
    with running(relay, ready=lambda: relay.published == 3, what="relay"):
        pass
    published = scrape_api(api.client)
    assert published.value("orderstream_outbox_depth") == 0
    assert published.value("orderstream_outbox_oldest_age_seconds") == 0
    assert published.since(waiting, "orderstream_relay_published_total") == 3
    assert published.since(waiting, "orderstream_relay_passes_total") >= 1

    # A row larger than the relay's producer takes: refused for good, parked.
    assert api.create(payload={"note": "x" * 5000}).status_code == 202
    small = OutboxRelay(
        producer_factory=lambda: make_producer(client_id="metrics-small", max_request_size=2000)
    )
    parked_rows = OutboxEvent.objects.filter(parked_at__isnull=False)
    with running(small, ready=parked_rows.exists, what="relay"):
        pass
    parked = scrape_api(api.client)
    assert parked.value("orderstream_outbox_parked") == 1
    assert parked.value("orderstream_outbox_depth") == 0
    assert parked.since(published, "orderstream_relay_parked_total") == 1


def test_a_metrics_port_in_use_stops_the_worker_with_a_clear_error():
    """Two workers on one machine with one WORKER_METRICS_PORT: the second says so."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port()))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MetricsPortInUse, match=f"127.0.0.1:{port}.*already in use"):
            call_command("run_worker", metrics_port=port)
        with pytest.raises(MetricsPortInUse, match="RELAY_METRICS_PORT"):
            call_command("run_relay", metrics_port=port)
