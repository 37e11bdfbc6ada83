"""/health, /ready and /docs are open; the schema is served."""

import pytest
import redis
from django.conf import settings

from testkit.helpers import eventually

REDIS_PAUSE_MS = 8000


def test_health_answers_ok(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_swagger_ui_and_schema_are_served(client):
    assert client.get("/docs").status_code == 200
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    assert "/health" in schema.json()["paths"]


@pytest.mark.broker
@pytest.mark.django_db(databases=["default", "worker"])
def test_ready_answers_200_when_both_databases_redis_and_the_broker_answer(client):
    response = client.get("/ready")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "ready",
        "down": [],
        "checks": dict.fromkeys(["postgres_api", "postgres_worker", "redis", "broker"], "ok"),
    }


@pytest.mark.django_db(databases=["default", "worker"])
def test_ready_is_200_degraded_naming_the_broker_when_none_answers(client):
    """Tests without the broker marker see an address where nothing answers. The API
    still accepts orders then (the outbox keeps them): ready, and says what is down."""
    response = client.get("/ready")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "degraded" and body["down"] == ["broker"]
    assert body["checks"]["broker"].startswith("down: ConnectionError: no broker answers at")


@pytest.mark.broker
@pytest.mark.django_db(databases=["default", "worker"])
def test_ready_is_200_degraded_naming_redis_while_redis_is_paused(client):
    """CLIENT PAUSE makes Redis hold every command: the PING times out (the client's socket
    timeout, REDIS_SOCKET_TIMEOUT) and /ready says Redis is down, still 200 (reads come from
    the API's database, writes go to the outbox); plain `ready` again once Redis answers."""
    # Long enough for the request to start well inside it, and to outlast the ping's
    # 2 s socket timeout; it ends by itself (an unpause would be held too).
    redis.Redis.from_url(settings.REDIS_URL).execute_command("CLIENT", "PAUSE", REDIS_PAUSE_MS)
    response = client.get("/ready")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["down"]) == ("degraded", ["redis"])
    assert "Timeout" in response.json()["checks"]["redis"]
    assert eventually(lambda: client.get("/ready").json()["status"] == "ready", timeout=30)


@pytest.mark.django_db(databases=["default", "worker"])
def test_ready_is_503_only_when_the_apis_own_database_does_not_answer(client, monkeypatch):
    """Without its own database the API can store no order: that alone takes it out."""
    from orders_api import readiness

    def refuse():
        raise ConnectionError("connection refused")

    monkeypatch.setitem(readiness.CHECKS, "postgres_worker", refuse)
    assert client.get("/ready").status_code == 200  # the worker's database: reported
    monkeypatch.setitem(readiness.CHECKS, "postgres_api", refuse)
    response = client.get("/ready")
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["down"] == ["broker", "postgres_api", "postgres_worker"]
    assert body["checks"]["postgres_api"] == "down: ConnectionError: connection refused"
