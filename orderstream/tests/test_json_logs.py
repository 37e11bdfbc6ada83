"""LOG_FORMAT=json on the real processes: one order followed by its order_id across the API,
the relay and the worker, and every line each of them writes is one JSON object.

The processes run as a deployment runs them (processes.Deployment: start-api.sh with
granian and its access log, `manage.py run_relay`, `manage.py run_worker`), with
LOG_LEVEL=DEBUG, which adds the one line per write, publish and applied event.
"""

from __future__ import annotations

import json
import uuid

import pytest

from testkit import processes
from testkit.ledger import post_order

pytestmark = [pytest.mark.broker, pytest.mark.processes]


def json_lines(launched: processes.Launched) -> list[dict]:
    """Every line the process wrote, parsed (a line that is no JSON object fails the test).

    The process may be writing its next line as the file is read: only the lines that end
    in a newline are whole."""
    parsed = []
    *whole, _being_written = launched.log_path.read_text().split("\n")
    for number, line in enumerate(whole, 1):
        try:
            fields = json.loads(line)
        except ValueError:
            pytest.fail(f"{launched.log_path.name}:{number} is not JSON: {line!r}")
        assert isinstance(fields, dict), line
        assert {"time", "level", "logger", "pid", "message"} <= set(fields), line
        parsed.append(fields)
    return parsed


def lines_of_order(launched: processes.Launched, order_id: str) -> list[dict]:
    return [fields for fields in json_lines(launched) if fields.get("order_id") == order_id]


def write_until_answered(api: processes.ApiInstance, body: dict, key: str) -> dict:
    """POST until the worker's answer is in (one Idempotency-Key: the same write; a new
    API worker answers 202 until its ACK listener is positioned)."""

    def answered() -> dict | None:
        status, answer, _ = post_order(api.base_url, body, "wait", key)
        assert status in (200, 202), (status, answer)
        return answer if status == 200 else None

    return processes.wait_until(answered, 60, f"the answer to {body}", api.launched)


def test_one_order_is_followed_across_api_relay_and_worker_by_its_order_id(unique_topics, tmp_path):
    with (
        processes.scratch_databases("orderstream_logs") as scratch,
        processes.Deployment(
            scratch,
            unique_topics,
            tmp_path,
            LOG_FORMAT="json",
            LOG_LEVEL="DEBUG",
            API_ACCESS_LOG="1",
        ) as deployment,
    ):
        deployment.launch(apis=1, api_workers=1, workers=1, relays=1)
        api, relay, worker = deployment.apis[0], deployment.relays[0], deployment.workers[0]

        user_id = str(uuid.uuid4())
        created = write_until_answered(api, {"user_id": user_id, "payload": {"amount": 5}}, "k1")
        assert created["status"] == "created", created
        order_id = created["order_id"]
        change = {"user_id": user_id, "order_id": order_id, "payload": {"amount": 7}}
        assert write_until_answered(api, change, "k2")["status"] == "updated"

        # Both events applied: the ACKs came, the worker's lines follow within its batch.
        worker_lines = processes.wait_until(
            lambda: len(found := lines_of_order(worker, order_id)) >= 2 and found,
            20,
            "the worker's lines of the order",
            worker,
        )
        api_lines = lines_of_order(api.launched, order_id)
        relay_lines = lines_of_order(relay, order_id)

        # The API: a line per request (a replay of the same key names the same event),
        # with the event it wrote and the answer it gave.
        assert {(f["logger"], f["level"]) for f in api_lines} == {
            ("orders_api.order_writes", "DEBUG")
        }
        event_ids = list(dict.fromkeys(f["event_id"] for f in api_lines))
        assert len(event_ids) == 2
        answers = {f["event_id"]: f["message"].split(": answered ")[1] for f in api_lines}
        assert [answers[event_id] for event_id in event_ids] == ["created", "updated"]
        # The relay published those two events, and says where each went.
        assert [f["event_id"] for f in relay_lines] == event_ids
        assert {f["logger"] for f in relay_lines} == {"orders_api.relay.publish"}
        placed = {f["event_id"]: (f["topic"], f["partition"], f["offset"]) for f in relay_lines}
        assert {topic for topic, _, _ in placed.values()} == {unique_topics.ORDERS_EVENTS_TOPIC}
        # The worker applied the same records: same event, partition and offset.
        assert [f["event_id"] for f in worker_lines] == event_ids
        for fields in worker_lines:
            assert fields["logger"] == "orders_worker.handler"
            assert "applied" in fields["message"]
            assert (fields["topic"], fields["partition"], fields["offset"]) == placed[
                fields["event_id"]
            ]

        # granian's own lines are JSON too: its start, and the access log it was asked for.
        loggers = {f["logger"] for f in json_lines(api.launched)}
        assert {"_granian", "granian.access", "prestart"} <= loggers
        # Stopped: the last lines (after SIGTERM) are JSON as well.
        assert relay.stop() == 0 and worker.stop() == 0
        assert api.launched.stop() == 0
        for launched in (api.launched, relay, worker):
            assert json_lines(launched), launched.log_path.name
        assert "stopped after" in json_lines(worker)[-1]["message"]
