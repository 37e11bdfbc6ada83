"""wrk with the benchmark's Lua scripts against a small recording server on 127.0.0.1:
every POST carries a fresh user id and payload id, every GET one of the given ids, and the
run's summary and CPU time come back. Skipped where wrk is not installed, unless
CI_REQUIRE_WRK=1 (as in .ci/run), which makes that a failure."""

from __future__ import annotations

import json
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.wrk import INSTALL_HINT, get_script, post_script, wrk_run


@pytest.fixture(autouse=True)
def wrk_installed():
    if shutil.which("wrk") is None:
        if os.environ.get("CI_REQUIRE_WRK") == "1":
            pytest.fail(f"CI_REQUIRE_WRK=1: {INSTALL_HINT}")
        pytest.skip(INSTALL_HINT)


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the API server answers wrk
    seen: list = []

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append(("POST", self.path, json.loads(body)))
        self._answer(201)

    def do_GET(self):
        self.seen.append(("GET", self.path, None))
        self._answer(200 if self.path != "/orders/missing" else 404)

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Recorder.seen
    server.shutdown()
    server.server_close()


def test_each_post_is_a_fresh_order(recorder):
    url, seen = recorder
    result = wrk_run(url=url, script=post_script("/orders?wait=false"), concurrency=2, seconds=1)
    posts = [body for method, path, body in seen if method == "POST"]
    assert posts and all(path == "/orders?wait=false" for _, path, _ in seen)
    assert result.summary["requests"] >= len(posts) - 2  # wrk counts only answered ones
    assert result.errors == 0 and result.rps > 0
    assert len({p["user_id"] for p in posts}) == len(posts)
    assert len({p["payload"]["id"] for p in posts}) == len(posts)
    assert all(len(p["user_id"]) == 36 and p["user_id"][14] == "4" for p in posts)
    assert 0 < result.cpu_seconds and 0 < result.cpu_share < 2


def test_gets_draw_from_the_ids_and_non_2xx_answers_count_as_errors(recorder):
    url, seen = recorder
    result = wrk_run(
        url=url, script=get_script("/orders/", ["a", "b", "missing"]), concurrency=1, seconds=1
    )
    paths = {path for method, path, _ in seen if method == "GET"}
    assert paths == {"/orders/a", "/orders/b", "/orders/missing"}
    assert 0 < result.summary["status_errors"] < result.summary["requests"]
    assert result.errors == result.summary["status_errors"]
