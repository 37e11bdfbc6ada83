"""What the API accepts, its server lets through: every external id stored is found.

Through the real server (compose/start-api.sh): an id is refused at write when its
lookup's URL could be longer than a common request-line limit (orderstream/order_fields.py,
MAX_EXTERNAL_ID_BYTES), and every id accepted is found, slashes and emoji included.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest

from orderstream.order_fields import MAX_EXTERNAL_ID_BYTES
from testkit import processes

pytestmark = [pytest.mark.broker, pytest.mark.processes]

USER = "7f1d6c1e-3a51-4c53-9d0e-6b7c1f2a9e10"


def call(url: str, body: dict | None = None) -> tuple[int, str, bytes]:
    """Status, Content-Type and body of a GET (or of a POST of `body` as JSON)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


# The longest ids in the characters that percent-encode longest (3 characters a byte), one
# byte more, and the 4,800 characters that were accepted, then answered with an HTML 414.
LONGEST = {
    "emoji": "\N{GRINNING FACE}" * (MAX_EXTERNAL_ID_BYTES // 4),
    "spaces": " " * MAX_EXTERNAL_ID_BYTES,
}
# Ids with slashes (decoded from %2F before routing) and an empty one are found too.
SHORT = {"slash": "2024/001", "empty": ""}
TOO_LONG = {
    "one byte more": "\N{GRINNING FACE}" * (MAX_EXTERNAL_ID_BYTES // 4) + " ",
    "4800": "x" * 4800,
}


def test_every_external_id_the_api_accepts_is_found_through_the_server(unique_topics, tmp_path):
    with (
        processes.scratch_databases("orderstream_ids") as scratch,
        processes.Deployment(scratch, unique_topics, tmp_path) as deployment,
    ):
        api = deployment.start_api(workers=1, threads=2)
        deployment.wait_until_serving()
        accepted = []
        for name, external_id in {**LONGEST, **SHORT, **TOO_LONG}.items():
            body = {"user_id": USER, "payload": {"id": external_id, "amount": 1}}
            status, kind, content = call(f"{api.base_url}/orders?wait=false", body)
            assert kind == "application/json", (name, status, content[:200])
            if status == 400:
                assert json.loads(content)["field"] == "payload.id", (name, content)
                continue
            assert status == 202, (name, content)
            url = f"{api.base_url}/orders/by-external/{quote(external_id, safe='')}?user_id={USER}"
            found, kind, content = call(url)
            assert (found, kind) == (200, "application/json"), (name, found, content[:200])
            order = json.loads(content)["order"]
            assert order["payload_json"]["id"] == external_id, name
            accepted.append(name)
        assert accepted == [*LONGEST, *SHORT]  # the longest are stored, none longer
