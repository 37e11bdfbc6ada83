"""The API's gunicorn worker: reads have a lane of their own, never queued behind POSTs."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request

import pytest

from orderstream.gunicorn_worker import first_bytes, starts_a_read
from testkit import processes


@pytest.mark.parametrize(
    "sent, read",
    [
        (b"GET /health HTTP/1.1\r\n", True),
        (b"HEAD /orders/x HTTP/1.1\r\n", True),
        (b"POST /orders HTTP/1.1\r\n", False),
        (b"GETX / HTTP/1.1\r\n", False),
        (b"", False),  # nothing arrived yet
    ],
)
def test_a_request_is_a_read_by_its_first_bytes_which_stay_to_be_parsed(sent, read):
    server, client = socket.socketpair()
    with server, client:
        client.sendall(sent)
        assert starts_a_read(first_bytes(server)) is read
        server.setblocking(False)
        assert (server.recv(64) if sent else b"") == sent  # peeked, not consumed


def test_a_closed_connection_is_no_read():
    server, client = socket.socketpair()
    client.close()
    with server:
        assert starts_a_read(first_bytes(server)) is False


def post_waiting(base_url: str, answers: list) -> None:
    request = urllib.request.Request(
        f"{base_url}/orders",
        data=json.dumps(
            {"user_id": "0b7e4f5c-2d1a-4e8b-9c3d-5a6f7e8d9c0b", "payload": {"amount": 1}}
        ).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answers.append((response.status, time.monotonic()))


def orders_stored(dbname: str) -> int:
    conn = processes.connect(dbname)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM orders_api_order")
            return cursor.fetchone()[0]
    finally:
        conn.close()


def health_sent_late(base_url: str, timeout: float, delay: float = 0.5):
    """GET /health from a client that connects, then sends its request `delay` seconds
    later (the server accepts before a byte has come); (status,) or None."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        time.sleep(delay)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        try:
            status_line = sock.makefile("rb").readline()
        except TimeoutError:
            return None
    return (int(status_line.split()[1]),) if status_line else None


@pytest.mark.processes
@pytest.mark.parametrize(
    "get_health",
    [
        lambda base_url, timeout: processes.http_get(f"{base_url}/health", timeout=timeout),
        health_sent_late,
    ],
    ids=["sent-at-once", "sent-after-the-accept"],
)
def test_health_and_reads_answer_while_every_post_thread_waits(unique_topics, tmp_path, get_health):
    """One gunicorn worker with one thread for POSTs, and no order worker: a waiting POST
    holds that thread for the whole ACK wait. /health and a read answer meanwhile, also
    when the request's bytes come after the connection was accepted."""
    with (
        processes.scratch_databases("orderstream_lanes") as scratch,
        processes.Deployment(scratch, unique_topics, tmp_path) as deployment,
    ):
        api = deployment.start_api(workers=1, threads=1, ORDER_ACK_WAIT_TIMEOUT="8")
        deployment.wait_until_serving()
        answers: list = []
        poster = threading.Thread(target=post_waiting, args=(api.base_url, answers))
        poster.start()
        # The POST holds the thread once its order is stored (it then waits for the ACK).
        processes.wait_until(lambda: orders_stored(scratch["default"]), 10, "the POST's order")
        began = time.monotonic()
        # Not bounded by the client: the figure below says how long it took.
        health = get_health(api.base_url, timeout=8)
        answered = time.monotonic()
        poster.join(timeout=60)
        assert health is not None and health[0] == 200, f"no answer in {answered - began:.1f} s"
        [(status, post_answered)] = answers
        assert status == 202  # it waited its 8 s: no worker
        assert answered < post_answered, "/health waited for the POST's thread"
        assert answered - began < 2.0
