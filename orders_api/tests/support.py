"""What several API test modules share: a user, the one error shape, the schema, merged
ACK outcomes."""

from __future__ import annotations

import functools

from orders_api.ack_outcomes import Outcome, Recorded, recorded_merge

USER = "7f1d6c1e-3a51-4c53-9d0e-6b7c1f2a9e10"


def assert_error(response, status: int, field: str, reason_part: str = ""):
    """The one error shape: `error`, `field`, `reason` and the list `errors`."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["field"] == field, body
    assert body["error"] == f"{field}: {body['reason']}"
    assert reason_part.lower() in body["reason"].lower(), body
    assert {"field": field, "reason": body["reason"]} in body["errors"]
    return body


def schema_of(api) -> dict:
    """The API's OpenAPI schema, as the `api` fixture's client reads it."""
    return api.get("/api/schema/?format=json").json()


def merged(*outcomes: Outcome) -> Recorded:
    """What an order's record comes to after these ACK outcomes, in this order."""
    return functools.reduce(
        lambda recorded, outcome: recorded_merge(recorded=recorded, outcome=outcome),
        outcomes,
        Recorded(),
    )
