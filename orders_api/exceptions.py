"""One error shape for every 4xx (and 5xx) answer of the API.

Every error body is (`response_shapes.Error`)

    {"error": "<field>: <reason>", "field": "<field>", "reason": "<reason>",
     "errors": [{"field": ..., "reason": ...}, ...]}

`error` keeps the single-string form the original Go service answered with; `field` and
`reason` name the first problem and `errors` lists all of them. Services raise domain
errors (`errors.py`), which `exception_handler` maps to their HTTP status here and only
here, or `ApplicationError` for invalid input; DRF's own exceptions, Django's `Http404`
and `RequestDataTooBig` are turned into the same shape, and the `handler*` views at the
end do the same for requests that never reach a DRF view (unknown URLs, oversized bodies,
a failed CSRF check). Errors of the HTTP server's own, for requests that never reach
Django (a request head larger than its buffer), stay the server's.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.response import Response

from orders_api.errors import (
    EventTooLarge,
    IdempotencyKeyReused,
    OrderDeleted,
    OrderError,
    OrderNotFound,
    OrderRejected,
)
from orders_api.renderers import ExactJSONRenderer
from orders_api.response_shapes import Error, ErrorItem

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """Input a client can correct: the field at fault, the reason and the HTTP status
    (400). What the domain refuses is an `errors.OrderError`, whose status is mapped below."""

    def __init__(
        self,
        field: str,
        reason: str,
        *,
        status_code: int = 400,
        code: str = "invalid",
    ):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.status_code = status_code
        self.code = code


class PayloadTooLarge(exceptions.APIException):
    """The request body is larger than `API_MAX_BODY_BYTES`."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "request body is too large"
    default_code = "too_large"


def _encodable(text: str) -> str:
    """`text` with what UTF-8 cannot encode (an unpaired surrogate echoed from the input,
    e.g. `"status": "\\ud800"`) written as a backslash escape, so the body always renders."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_body(problems: list[tuple[str, str]]) -> Error:
    """The JSON body for a list of (field, reason) pairs; the first one is the headline."""
    problems = [(_encodable(f), _encodable(r)) for f, r in problems]
    field, reason = problems[0]
    items: list[ErrorItem] = [{"field": f, "reason": r} for f, r in problems]
    return {"error": f"{field}: {reason}", "field": field, "reason": reason, "errors": items}


def _flatten(detail, prefix: str) -> list[tuple[str, str]]:
    """DRF's nested error detail as (dotted field path, reason) pairs."""
    if isinstance(detail, dict):
        pairs = []
        for key, value in detail.items():
            name = prefix if key == "non_field_errors" else (f"{prefix}.{key}" if prefix else key)
            pairs.extend(_flatten(value, name or "body"))
        return pairs
    if isinstance(detail, list):
        pairs = []
        for index, value in enumerate(detail):
            nested = isinstance(value, (dict, list))
            pairs.extend(_flatten(value, f"{prefix}[{index}]" if nested else prefix))
        return pairs
    return [(prefix or "body", str(detail))]


# The field named for DRF exceptions that are not about one input field.
_EXCEPTION_FIELDS = {
    exceptions.ParseError: "body",
    exceptions.UnsupportedMediaType: "Content-Type",
    exceptions.NotAcceptable: "Accept",
    exceptions.MethodNotAllowed: "method",
    exceptions.NotFound: "path",
    PayloadTooLarge: "body",
    exceptions.Throttled: "request",
    exceptions.NotAuthenticated: "Authorization",
    exceptions.AuthenticationFailed: "Authorization",
    exceptions.PermissionDenied: "path",
}


# The HTTP status of each domain error (errors.py).
DOMAIN_STATUSES = {
    OrderNotFound: status.HTTP_404_NOT_FOUND,
    OrderDeleted: status.HTTP_409_CONFLICT,
    EventTooLarge: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    IdempotencyKeyReused: status.HTTP_422_UNPROCESSABLE_ENTITY,
    OrderRejected: status.HTTP_422_UNPROCESSABLE_ENTITY,
}


def _domain_headers(exc: OrderError) -> dict[str, str]:
    """A rejected order is stored all the same: the answer says where, and whether it
    replays an earlier request (as the 200 and 202 answers of a write do)."""
    if not isinstance(exc, OrderRejected):
        return {}
    headers = {"Location": f"/orders/{exc.order_id}"}
    if exc.replayed:
        headers["Idempotent-Replayed"] = "true"
    return headers


def exception_handler(exc, context) -> Response | None:
    """DRF's EXCEPTION_HANDLER: domain, application, DRF and Django errors as one JSON
    shape, in JSON whatever the view renders otherwise (Swagger UI's and ReDoc's HTML
    pages, the schema's YAML); the browsable API keeps its page, which shows that body."""
    response = _error_response(exc)
    request = context.get("request")
    if response is not None and request is not None:
        if not isinstance(getattr(request, "accepted_renderer", None), BrowsableAPIRenderer):
            request.accepted_renderer = ExactJSONRenderer()
            request.accepted_media_type = ExactJSONRenderer.media_type
    return response


def _error_response(exc) -> Response | None:
    if isinstance(exc, OrderError):
        return Response(
            error_body([(exc.field, exc.reason)]),
            status=next(code for kind, code in DOMAIN_STATUSES.items() if isinstance(exc, kind)),
            headers=_domain_headers(exc),
        )
    if isinstance(exc, ApplicationError):
        return Response(error_body([(exc.field, exc.reason)]), status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(str(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound("no such resource")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: Django's 500 handling (handler500 below) takes over
    if isinstance(exc, exceptions.ValidationError):
        problems = _flatten(exc.detail, "")
    else:
        field = next(
            (name for kind, name in _EXCEPTION_FIELDS.items() if isinstance(exc, kind)), "request"
        )
        problems = [(field, str(exc.detail))]
    headers = {}
    if getattr(exc, "auth_header", None):  # set by DRF for a 401
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    return Response(error_body(problems), status=exc.status_code, headers=headers)


def json_error(status_code: int, field: str, reason: str) -> JsonResponse:
    return JsonResponse(error_body([(field, reason)]), status=status_code)


# Django's handler views (orderstream/urls.py), for errors outside DRF views.


def not_found(request, exception=None) -> JsonResponse:
    return json_error(404, "path", f"no such resource: {request.path}")


def bad_request(request, exception=None) -> JsonResponse:
    if isinstance(exception, RequestDataTooBig):
        return json_error(413, "body", "request body is too large")
    return json_error(400, "request", "bad request")


def permission_denied(request, exception=None) -> JsonResponse:
    return json_error(403, "path", "permission denied")


def csrf_failure(request, reason: str = "") -> JsonResponse:
    """CSRF_FAILURE_VIEW: Django's CSRF check refused a form post (the admin's)."""
    return json_error(403, "CSRF", reason or "CSRF verification failed")


def server_error(request) -> JsonResponse:
    return json_error(500, "server", "internal error; the request was logged")
