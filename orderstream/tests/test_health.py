"""/health and /docs are open; the schema is served."""


def test_health_answers_ok(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_swagger_ui_and_schema_are_served(client):
    assert client.get("/docs").status_code == 200
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    assert "/health" in schema.json()["paths"]
