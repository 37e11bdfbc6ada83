"""Who may see what: the list needs a user_id unless a staff user is logged in, and the
API can be closed with bearer tokens (API_TOKENS), off by default."""

from __future__ import annotations

import logging

import pytest

from orders_api.apps import warn_when_open
from testkit.factories import OrderFactory

pytestmark = pytest.mark.django_db

USER = "7f1d6c1e-3a51-4c53-9d0e-6b7c1f2a9e10"
TOKEN = "s3cret-token-for-tests"
ORDER = {"user_id": USER, "payload": {"amount": 1}}


def test_the_list_without_user_id_is_400_for_anyone_but_staff(client, admin_client):
    """It used to list every user's orders, with their user ids, to anyone."""
    OrderFactory()
    response = client.get("/orders")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "user_id"
    staff = admin_client.get("/orders", HTTP_ACCEPT="application/json")
    assert staff.status_code == 200
    assert staff.json()["count"] == 1


def test_the_list_of_one_user_needs_no_login(client):
    OrderFactory(user_id=USER)
    OrderFactory()
    response = client.get("/orders", {"user_id": USER})
    assert response.status_code == 200
    assert response.json()["count"] == 1


@pytest.fixture
def tokens(settings):
    settings.API_TOKENS = ["another-token", TOKEN]
    return settings


@pytest.mark.parametrize(
    "authorization, field",
    [(None, "Authorization"), (f"Bearer {TOKEN}x", "Authorization"), ("Bearer", "Authorization")],
)
def test_with_tokens_a_request_without_a_valid_one_is_401(client, tokens, authorization, field):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = client.post("/orders?wait=false", ORDER, content_type="application/json", **headers)
    assert response.status_code == 401
    assert response.json()["errors"][0]["field"] == field
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert client.get(f"/orders?user_id={USER}", **headers).status_code == 401


def test_with_tokens_any_of_them_opens_the_api(client, tokens):
    response = client.post(
        "/orders?wait=false",
        ORDER,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )
    assert response.status_code == 202, response.content
    listed = client.get("/orders", {"user_id": USER}, HTTP_AUTHORIZATION="Bearer another-token")
    assert listed.status_code == 200


def test_with_tokens_health_schema_and_docs_stay_open_and_staff_may_browse(
    client, admin_client, tokens
):
    assert client.get("/health").status_code == 200
    assert "broker" in client.get("/ready").json()["down"]  # answered, not a 401
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/docs").status_code == 200
    assert admin_client.get("/orders", HTTP_ACCEPT="text/html").status_code == 200


@pytest.mark.parametrize("authorization", ["Bearer x", "Bearer", "Bearer a b", f"Bearer {TOKEN}"])
def test_without_tokens_a_bearer_header_is_ignored(client, settings, authorization):
    """Auth off means off: a client (or a proxy) that sends any bearer header while
    API_TOKENS is empty is served as one that sends none (it was a 401, /health too)."""
    settings.API_TOKENS = []
    headers = {"HTTP_AUTHORIZATION": authorization}
    assert client.get("/health", **headers).status_code == 200
    response = client.post("/orders?wait=false", ORDER, content_type="application/json", **headers)
    assert response.status_code == 202, response.content
    assert client.get("/orders", {"user_id": USER}, **headers).status_code == 200


def test_production_warns_at_start_while_the_api_is_open(settings, caplog):
    settings.API_TOKENS = []
    with caplog.at_level(logging.WARNING, logger="orders_api.apps"):
        warn_when_open(production=True)
    assert "API_TOKENS" in caplog.text
    caplog.clear()
    warn_when_open(production=False)
    settings.API_TOKENS = [TOKEN]
    warn_when_open(production=True)
    assert not caplog.text
