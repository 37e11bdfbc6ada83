"""Fixtures of the API tests: a JSON client, polling with a deadline, topic readers."""

from __future__ import annotations

import json
import uuid

import pytest
from kafka import TopicPartition

from orders_api import runtime
from orderstream.kafka import make_consumer
from orderstream.testing import eventually


@pytest.fixture(scope="package", autouse=True)
def api_background(django_db_setup, django_db_blocker):
    """Stop this process's ACK listener after the API tests.

    Their threads hold connections to the test databases, which must be closed before
    the databases are dropped.
    """
    yield
    runtime.shutdown()


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


class TopicReader:
    """Reads one topic from its current end: what is published after the reader starts."""

    def __init__(self, topic: str):
        self.topic = topic
        self.consumer = make_consumer(group_id=None, client_id="api-tests")
        partitions = eventually(
            lambda: self.consumer.partitions_for_topic(topic) or self.consumer.topics() and None,
            message=f"metadata of {topic}",
        )
        self.partitions = [TopicPartition(topic, p) for p in sorted(partitions)]
        self.consumer.assign(self.partitions)
        self.consumer.seek_to_end(*self.partitions)
        for partition in self.partitions:
            self.consumer.position(partition)
        self.records = []

    def read_until(self, predicate, *, timeout: float = 15.0) -> list:
        """Poll until `predicate(records)` holds; return the records read so far."""

        def check():
            for batch in self.consumer.poll(timeout_ms=100).values():
                self.records.extend(batch)
            return predicate(self.records)

        eventually(check, timeout=timeout, interval=0, message=f"records on {self.topic}")
        return self.records

    def close(self):
        self.consumer.close()


@pytest.fixture
def topic_reader():
    readers = []

    def open_reader(topic: str) -> TopicReader:
        reader = TopicReader(topic)
        readers.append(reader)
        return reader

    yield open_reader
    for reader in readers:
        reader.close()
