"""Real Kafka clients with faults injected: for tests of the error paths around them."""

from __future__ import annotations

import json

from orderstream.kafka import KafkaTimeoutError


class Failing:
    """A real client whose `method` raises `error` for its next `failures` calls (None:
    for good, until `heal()`); every other attribute is the client's own.

    `after_the_call`: a failing call runs the real one first, then raises (the work was
    done, the caller is told it failed: a flush that timed out after the broker had
    confirmed everything)."""

    def __init__(self, client, method: str, error: Exception, *, after_the_call: bool = False):
        self._client = client
        self._method = method
        self._error = error
        self._after_the_call = after_the_call
        self.failures: int | None = 0
        self.failed = 0  # calls that raised

    def fail(self, times: int | None) -> None:
        self.failures = times

    def heal(self) -> None:
        self.failures = 0

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if name != self._method:
            return attribute

        def call(*args, **kwargs):
            if self.failures is None or self.failures > 0:
                if self.failures:
                    self.failures -= 1
                self.failed += 1
                if self._after_the_call:
                    attribute(*args, **kwargs)
                raise self._error
            return attribute(*args, **kwargs)

        return call


class RefusingProducer:
    """A real producer that times out (KafkaTimeoutError, as a broker that does not
    answer) on every order event whose `status` is in `statuses` (a set the test may
    change); other records go through."""

    def __init__(self, producer, statuses: set[str]):
        self._producer = producer
        self.statuses = statuses
        self.refused = 0

    def send(self, topic, value=None, **kwargs):
        if json.loads(value).get("status") in self.statuses:
            self.refused += 1
            raise KafkaTimeoutError("refused by the test")
        return self._producer.send(topic, value=value, **kwargs)

    def __getattr__(self, name):
        return getattr(self._producer, name)
