"""Fixtures of the API tests: a JSON client, polling with a deadline, topic readers."""

from __future__ import annotations

import json
import uuid

import pytest

from orders_api.ack_wait import process_listener
from testkit.topics import TopicReader


@pytest.fixture(scope="package", autouse=True)
def api_background(django_db_setup, django_db_blocker):
    """Stop this process's ACK listener after the API tests.

    Their threads hold connections to the test databases, which must be closed before
    the databases are dropped.
    """
    yield
    process_listener.shutdown()


class JsonClient:
    """Django's test client speaking JSON to the API."""

    def __init__(self, client):
        self.client = client

    def post(self, path: str, body, *, headers: dict | None = None, raw: bytes | None = None):
        data = raw if raw is not None else json.dumps(body)
        return self.client.post(path, data=data, content_type="application/json", headers=headers)

    def get(self, path: str, params: dict | None = None, *, headers: dict | None = None):
        return self.client.get(
            path, params or {}, headers=headers or {"Accept": "application/json"}
        )

    def create(self, *, user_id=None, payload=None, wait: bool = False, headers=None):
        """POST a create; returns the response."""
        body = {"user_id": str(user_id or uuid.uuid4()), "payload": payload or {"amount": 1}}
        return self.post("/orders" + ("" if wait else "?wait=false"), body, headers=headers)


@pytest.fixture
def api(client):
    return JsonClient(client)


@pytest.fixture
def topic_reader():
    readers = []

    def open_reader(topic: str) -> TopicReader:
        reader = TopicReader(topic, from_start=False)
        readers.append(reader)
        return reader

    yield open_reader
    for reader in readers:
        reader.close()
