"""`make run` for real: `scripts/local_stack.py run` against the test's services.

The test's PostgreSQL, Redis and broker already answer, so the local stack uses them (its
"already answering" path), creates its two databases, migrates them, seeds the admin user,
creates the topics, starts gunicorn, the relay and the worker, serves a create end to end,
and stops every process it started on SIGTERM.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request

import pytest

from orderstream.devstack.ports import free_port
from orderstream.testing import eventually
from orderstream.tests import processes
from orderstream.tests.processes import Launched, child_pids, http_get, script_env, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.processes]


def post_order(base: str, user_id: str, key: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{base}/orders",
        data=json.dumps({"user_id": user_id, "payload": {"id": "run-1", "amount": 3}}).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def test_make_run_serves_a_create_end_to_end_and_stops_every_process(unique_topics, tmp_path):
    port = free_port()
    with processes.scratch_databases(prefix="orderstream_run") as scratch:
        env = script_env(
            scratch,
            unique_topics,
            tmp_path,
            DJANGO_SETTINGS_MODULE="orderstream.settings.local",
            API_PORT=str(port),
            BROKER=os.environ.get("BROKER", "tansu"),
            LOCAL_ADMIN_USER="stack-admin",
        )
        launched = Launched(
            [sys.executable, "scripts/local_stack.py", "run"], env, tmp_path / "run.log"
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until(
                lambda: (http_get(f"{base}/health") or (0,))[0] == 200, 90, "/health", launched
            )
            wait_until(lambda: "OrderStream is up" in launched.output(), 10, "the banner", launched)
            output = launched.output()
            assert "(already answering)" in output  # the test's own services were used
            assert "created the local admin user 'stack-admin'" in output
            children = child_pids(launched.process.pid)
            assert len(children) == 3, children  # gunicorn, the relay and the worker

            # The same request (one Idempotency-Key) until the worker's answer is in:
            # the relay published the event and the worker applied it.
            def acknowledged() -> dict | None:
                status, body = post_order(base, "7f1d6c1e-3a51-4c53-9d0e-6b7c1f2a9e10", "run-1")
                return body if status == 200 else None

            answer = eventually(acknowledged, timeout=60, interval=0.5, message="a 200")
            assert answer["status"] == "created"
            # The relay's process records the worker's ACK too (its ACK recorder thread).
            order_url = f"{base}/orders/{answer['order_id']}"

            def processed() -> bool:
                status, _, body = http_get(order_url) or (0, {}, b"")
                order = json.loads(body)["order"] if status == 200 else {}
                return (order.get("processing"), order.get("version")) == ("done", 1)

            eventually(processed, timeout=30, interval=0.5, message="processing done, version 1")

            assert launched.stop(timeout=40) == 0, launched.output()
            assert not [pid for pid in children if os.path.exists(f"/proc/{pid}")]
            assert "ACK recorder stopped after 1 messages" in launched.output()
        finally:
            launched.cleanup()
