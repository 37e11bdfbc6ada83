"""HTTP views: thin DRF views over services and selectors (routes in urls.py)."""

from __future__ import annotations

import re
import time

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from . import runtime
from .exceptions import ApplicationError, error_body
from .idempotency import HEADER as IDEMPOTENCY_HEADER
from .idempotency import idempotency_key_clean
from .selectors import (
    order_event_applied,
    order_get,
    order_get_by_external_id,
    order_list,
    order_views,
)
from .serializers import (
    ByExternalQuerySerializer,
    ErrorSerializer,
    ExternalIdPathSerializer,
    OrderEnvelopeSerializer,
    OrderIdPathSerializer,
    OrderListQuerySerializer,
    OrderUpsertInputSerializer,
    OrderViewSerializer,
    OrderWriteResponseSerializer,
)
from .services import order_upsert

# The values of `?wait=` (either case); anything else, an empty value too, is a 400.
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")
# Longest a waiting POST waits for this process's ACK listener to be positioned (only
# before the first ACK read, or while no broker answers) before it writes anyway.
ACK_LISTENER_READY_WAIT = 1.0
INTEGER = re.compile(r"-?[0-9]+")


@extend_schema(
    responses=inline_serializer("Health", {"status": serializers.CharField()}),
    description="Liveness: answers as long as the process serves requests.",
)
@api_view(["GET"])
@permission_classes([AllowAny])
def health(request):
    return Response({"status": "ok"})


def _preferences(request) -> dict[str, str]:
    """RFC 7240 `Prefer` header as {name: value}."""
    prefs = {}
    for item in request.headers.get("Prefer", "").split(","):
        name, _, value = item.split(";")[0].strip().partition("=")
        if name:
            prefs[name.lower()] = value.strip().strip('"')
    return prefs


def ack_wait_seconds(request) -> float:
    """How long this POST waits for the worker's ACK (0 = answer 202 at once).

    `?wait=false` or `Prefer: respond-async` opt out; `Prefer: wait=N` shortens the wait.
    A `wait` that is no number of seconds, an empty one too, is a 400 (as `?wait=` is).
    """
    wait = request.query_params.get("wait")
    if wait is not None and wait.lower() not in TRUE_WORDS + FALSE_WORDS:
        raise ApplicationError("wait", "must be true or false")
    prefs = _preferences(request)
    if (wait is not None and wait.lower() in FALSE_WORDS) or "respond-async" in prefs:
        return 0.0
    seconds = settings.ORDER_ACK_WAIT_TIMEOUT
    if "wait" in prefs:
        try:
            seconds = min(seconds, max(float(prefs["wait"]), 0.0))
        except ValueError:
            raise ApplicationError("Prefer", "wait= must be a number of seconds") from None
    return seconds


def _ack_answer(write, ack, headers: dict) -> dict:
    """The 200 body for the worker's ACK; a rejection is a 422 naming the payload."""
    if ack.status == "rejected":
        raise ApplicationError(
            "payload",
            ack.error or "rejected by the worker",
            status_code=422,
            code="rejected",
            headers=headers,
        )
    return {"order_id": write.order_id, "status": ack.status}


class OrderPagination(PageNumberPagination):
    """Pages of the list; a page that is no number or does not exist is a 400 naming
    `page` (DRF answers 404)."""

    page_size_query_param = "page_size"
    max_page_size = 500
    invalid_page_message = "no page {page_number}: {message}"

    def get_page_number(self, request, paginator):
        # DRF reads an empty `?page=` as page 1; it is no page number, as `?page=0` is not.
        if request.query_params.get(self.page_query_param) == "":
            raise ValidationError({self.page_query_param: ["must be a page number"]})
        return super().get_page_number(request, paginator)

    def get_page_size(self, request):
        # DRF uses the default size for a `page_size` that is no integer (`abc`, empty).
        size = request.query_params.get(self.page_size_query_param)
        if size is not None and not INTEGER.fullmatch(size):
            raise ValidationError({self.page_size_query_param: ["must be an integer"]})
        return super().get_page_size(request)

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound as exc:  # raised only for an invalid page
            raise ValidationError({self.page_query_param: [exc.detail]}) from None


ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input; names the field."),
    404: OpenApiResponse(ErrorSerializer, description="No such order."),
}

WRITE_EXAMPLES = [
    OpenApiExample(
        "create",
        request_only=True,
        value={
            "user_id": "7f1d6c1e-3a51-4c53-9d0e-6b7c1f2a9e10",
            "payload": {"id": "A-1001", "items": [{"sku": "book", "price": 12.5, "qty": 2}]},
        },
    ),
    OpenApiExample(
        "create with payload_json as a string",
        request_only=True,
        value={
            "order_id": "0",
            "user_id": "7f1d6c1e-3a51-4c53-9d0e-6b7c1f2a9e10",
            "payload_json": '{"id": "A-1002", "amount": 99.9}',
        },
    ),
    OpenApiExample(
        "update",
        request_only=True,
        value={
            "order_id": "2b7e1516-28ae-4d2a-a6ab-f7158809cf4f",
            "user_id": "7f1d6c1e-3a51-4c53-9d0e-6b7c1f2a9e10",
            "payload_json": {"id": "A-1001", "amount": 30},
        },
    ),
    OpenApiExample(
        "soft delete",
        request_only=True,
        value={
            "order_id": "2b7e1516-28ae-4d2a-a6ab-f7158809cf4f",
            "user_id": "7f1d6c1e-3a51-4c53-9d0e-6b7c1f2a9e10",
            "status": "deleted",
        },
    ),
    OpenApiExample(
        "acknowledged",
        response_only=True,
        status_codes=["200"],
        value={"order_id": "2b7e1516-28ae-4d2a-a6ab-f7158809cf4f", "status": "created"},
    ),
    OpenApiExample(
        "pending",
        response_only=True,
        status_codes=["202"],
        value={"order_id": "2b7e1516-28ae-4d2a-a6ab-f7158809cf4f", "status": "pending"},
    ),
    *(
        OpenApiExample(
            name, response_only=True, status_codes=[code], value=error_body([(field, reason)])
        )
        for name, code, field, reason in [
            ("invalid user_id", "400", "user_id", "must be a uuid"),
            ("deleted order", "409", "order_id", "the order is deleted and cannot be changed"),
            ("rejected by the worker", "422", "payload", "amount: exceeds the column"),
        ]
    ),
]


class OrderViewSet(viewsets.GenericViewSet):
    """Orders: create, update and soft-delete with POST; read by id, external id or list."""

    pagination_class = OrderPagination
    lookup_field = "order_id"
    lookup_value_regex = "[^/]+"
    serializer_class = OrderViewSerializer

    def get_serializer_class(self):
        # The browsable API builds its POST form during a GET, with the method overridden.
        if self.action == "create" or getattr(self.request, "method", None) == "POST":
            return OrderUpsertInputSerializer
        return OrderViewSerializer

    def get_queryset(self):
        """The orders the list shows (the browsable API asks for them too): one user's,
        or everyone's for a logged-in staff user only."""
        query = OrderListQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        if query.validated_data.get("user_id") is None and not self.request.user.is_staff:
            raise ApplicationError("user_id", "is required (all users' orders: staff login)")
        return order_list(**query.validated_data)

    @extend_schema(
        summary="Create, update or soft-delete an order",
        description=(
            '`order_id` empty, absent or "0" creates an order; a uuid updates it; '
            '`status: "deleted"` soft-deletes it. The order data is `payload_json` (an '
            "object, or a string holding one) or `payload` (an object). The answer waits "
            "for the worker's ACK (200) up to ORDER_ACK_WAIT_TIMEOUT, else it is 202 "
            "`pending`: the event is stored and will be processed. An order the worker "
            "rejects is a 422."
        ),
        request=OrderUpsertInputSerializer,
        parameters=[
            OpenApiParameter(
                "wait",
                {"type": "string", "enum": [*TRUE_WORDS, *FALSE_WORDS]},
                OpenApiParameter.QUERY,
                description="false: answer 202 at once instead of waiting for the ACK "
                "(either case; 0, no, off too); true (1, yes, on) or absent: wait.",
            ),
            OpenApiParameter(
                "Prefer",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="`respond-async` = wait=false; `wait=N` waits at most N seconds.",
            ),
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
                OpenApiParameter.HEADER,
                description="A repeated key (per user_id) returns the first request's order "
                "instead of making a second one; reuse with another body is a 422. 1 to 255 "
                "printable ASCII characters (space to ~), else a 400.",
            ),
        ],
        responses={
            200: OpenApiResponse(OrderWriteResponseSerializer, description="The worker's ACK."),
            202: OpenApiResponse(
                OrderWriteResponseSerializer,
                description="Stored and published; not yet acknowledged.",
            ),
            **ERRORS,
            404: OpenApiResponse(ErrorSerializer, description="Unknown order_id (for this user)."),
            409: OpenApiResponse(ErrorSerializer, description="The order is deleted."),
            413: OpenApiResponse(
                ErrorSerializer,
                description="Body larger than API_MAX_BODY_BYTES, or an order whose event "
                "would exceed the broker's limit (field payload).",
            ),
            415: OpenApiResponse(
                ErrorSerializer,
                description="Content-Type not JSON, or a charset that is no text encoding.",
            ),
            422: OpenApiResponse(
                ErrorSerializer,
                description="Idempotency-Key reused with a different request, or the worker "
                "rejected the order (field payload, the worker's reason).",
            ),
        },
        examples=WRITE_EXAMPLES,
    )
    def create(self, request):
        started = time.monotonic()
        body = OrderUpsertInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key = idempotency_key_clean(request.headers.get(IDEMPOTENCY_HEADER))
        wait = ack_wait_seconds(request)
        listener = None
        if wait > 0:
            listener = runtime.ack_listener()
            # Only a listener positioned before the publish is sure to see the ACK; one
            # that is not ready soon (no broker) is not waited for: the answer is a 202.
            if not listener.ready.wait(min(wait, ACK_LISTENER_READY_WAIT)):
                listener = None
        write = order_upsert(**body.validated_data, idempotency_key=key)
        headers = {"Location": f"/orders/{write.order_id}"}
        answer = None
        if write.replayed:
            headers["Idempotent-Replayed"] = "true"
            answer = self._known_outcome(write, headers)
        if answer is None and listener is not None:
            ack = listener.wait_for(write.event_id, max(wait - (time.monotonic() - started), 0))
            if ack is not None:
                answer = _ack_answer(write, ack, headers)
        if answer is None:
            if wait == 0:
                headers["Preference-Applied"] = "respond-async"
            answer = {"order_id": write.order_id, "status": "pending"}
            return Response(answer, status=status.HTTP_202_ACCEPTED, headers=headers)
        return Response(OrderWriteResponseSerializer(answer).data, headers=headers)

    @staticmethod
    def _known_outcome(write, headers: dict) -> dict | None:
        """For a replayed request: its ACK if this process has seen it, else the worker's
        result in Redis when it shows the event applied (after a restart); None when
        unknown yet."""
        ack = runtime.ack_listener().recent(write.event_id)
        if ack is not None:
            return _ack_answer(write, ack, headers)
        if order_event_applied(order_id=write.order_id, event_id=write.event_id):
            return {"order_id": write.order_id, "status": write.operation}
        return None

    @extend_schema(
        summary="List orders (newest first, paginated)",
        parameters=[
            OrderListQuerySerializer,
            OpenApiParameter(
                "user_id",
                OpenApiTypes.UUID,
                OpenApiParameter.QUERY,
                required=True,
                description="Whose orders. A logged-in staff user (the browsable API) may "
                "leave it out to list every user's orders.",
            ),
            OpenApiParameter(
                "page",
                {"type": "integer", "minimum": 1},
                OpenApiParameter.QUERY,
                description="A page of the list (from 1); a page past the last is a 400.",
            ),
        ],
        responses={200: OrderViewSerializer(many=True), 400: ERRORS[400]},
    )
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        data = OrderViewSerializer(order_views(orders=page), many=True).data
        return self.get_paginated_response(data)

    @extend_schema(
        summary="One order by its order_id",
        parameters=[OpenApiParameter("order_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={200: OrderEnvelopeSerializer, **ERRORS},
    )
    def retrieve(self, request, order_id=None):
        path = OrderIdPathSerializer(data={"order_id": order_id})
        path.is_valid(raise_exception=True)
        view = order_get(**path.validated_data)
        return Response(OrderEnvelopeSerializer({"order": view}).data)

    @extend_schema(
        summary="The newest order of a user with this external id (payload.id)",
        parameters=[
            OpenApiParameter("external_id", OpenApiTypes.STR, OpenApiParameter.PATH),
            ByExternalQuerySerializer,
        ],
        responses={200: OrderEnvelopeSerializer, **ERRORS},
    )
    @action(detail=False, url_path=r"by-external/(?P<external_id>[^/]+)")
    def by_external(self, request, external_id=None):
        path = ExternalIdPathSerializer(data={"external_id": external_id})
        path.is_valid(raise_exception=True)
        query = ByExternalQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        view = order_get_by_external_id(**path.validated_data, **query.validated_data)
        return Response(OrderEnvelopeSerializer({"order": view}).data)
