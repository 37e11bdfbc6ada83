"""HTTP views: thin DRF views over services and selectors (routes in urls.py).

Their OpenAPI description is in `schema.py`, applied here as decorators; the bodies they
answer with are the shapes of `response_shapes.py`, built as plain dicts.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.paginator import InvalidPage, Page
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from orders_api.exceptions import ApplicationError
from orders_api.idempotency import HEADER as IDEMPOTENCY_HEADER
from orders_api.idempotency import idempotency_key_clean
from orders_api.order_writes import order_write
from orders_api.outbox_metrics import OutboxCollector
from orders_api.readiness import REQUIRED_FOR_WRITES, readiness_check
from orders_api.response_shapes import (
    Health,
    OrderEnvelope,
    OrderViewSerializer,
    OrderWriteResponse,
    Readiness,
)
from orders_api.schema import (
    by_external_schema,
    create_schema,
    health_schema,
    list_schema,
    ready_schema,
    retrieve_schema,
)
from orders_api.selectors import (
    order_get,
    order_get_by_external_id,
    order_list,
    order_page,
    order_views,
)
from orders_api.serializers import (
    WAIT_FALSE_WORDS,
    WAIT_TRUE_WORDS,
    ByExternalQuerySerializer,
    ExternalIdPathSerializer,
    OrderIdPathSerializer,
    OrderListQuerySerializer,
    OrderUpsertInputSerializer,
)
from orderstream.metrics import metrics_page

INTEGER = re.compile(r"-?[0-9]+")
NATURAL = re.compile(r"[0-9]+")
# On a 202: why the API answered at once although the client asked to wait (ack_wait_gate).
ACK_WAIT_SKIPPED_HEADER = "Ack-Wait-Skipped"


@health_schema
@api_view(["GET"])
@permission_classes([AllowAny])
def health(request):
    body: Health = {"status": "ok"}
    return Response(body)


@ready_schema
@api_view(["GET"])
@permission_classes([AllowAny])
def ready(request):
    states = readiness_check()
    down = sorted(name for name, state in states.items() if state != "ok")
    unavailable = any(name in REQUIRED_FOR_WRITES for name in down)
    body: Readiness = {
        "status": "unavailable" if unavailable else "degraded" if down else "ready",
        "down": down,
        "checks": states,
    }
    return Response(body, status=503 if unavailable else 200)


class AnyAccept(BaseContentNegotiation):
    """The first renderer, whatever the client accepts: /metrics answers Prometheus text
    (to any Accept), only its errors are JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None


@extend_schema(exclude=True)  # for Prometheus, not part of the API
class MetricsView(APIView):
    """GET /metrics: Prometheus text of every process of this API server (see
    orderstream/metrics.py), with the outbox gauges read now. Open, as /health is."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    content_negotiation_class = AnyAccept

    def get(self, request):
        body, content_type = metrics_page([OutboxCollector()])
        return HttpResponse(body, content_type=content_type)


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
    if wait is not None and wait.lower() not in WAIT_TRUE_WORDS + WAIT_FALSE_WORDS:
        raise ApplicationError("wait", "must be true or false")
    prefs = _preferences(request)
    if (wait is not None and wait.lower() in WAIT_FALSE_WORDS) or "respond-async" in prefs:
        return 0.0
    seconds = settings.ORDER_ACK_WAIT_TIMEOUT
    if "wait" in prefs:
        try:
            seconds = min(seconds, max(float(prefs["wait"]), 0.0))
        except ValueError:
            raise ApplicationError("Prefer", "wait= must be a number of seconds") from None
    return seconds


class OrderPagination(PageNumberPagination):
    """Pages of the list, bounded by rows (`page_size`) and by bytes (API_PAGE_MAX_BYTES of
    payload, `selectors.order_page`): a page of large orders is shorter.

    A page starts at a page number (`page`) or at a row (`offset`, from 0): the `next`
    link of a page cut short by the bytes goes on with `offset` at the first order left
    out, and so does every link from a page that started at an offset. A page that is no
    number or does not exist is a 400 naming `page` (DRF answers 404); an offset that is
    no row of the list, a 400 naming `offset`.
    """

    page_size_query_param = "page_size"
    offset_query_param = "offset"
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

    def get_offset(self, request) -> int | None:
        """The row the page starts at when `offset` is given (None when it is not)."""
        offset = request.query_params.get(self.offset_query_param)
        if offset is None:
            return None
        if not NATURAL.fullmatch(offset):
            raise ValidationError({self.offset_query_param: ["must be an integer from 0"]})
        if self.page_query_param in request.query_params:
            raise ValidationError(
                {self.offset_query_param: [f"or {self.page_query_param}, not both"]}
            )
        return int(offset)

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        size = self.get_page_size(request)
        offset = self.get_offset(request)
        paginator = self.django_paginator_class(queryset, size)
        if offset is None:
            number = self.get_page_number(request, paginator)
            try:
                page = paginator.page(number)
            except InvalidPage as exc:
                message = self.invalid_page_message.format(page_number=number, message=exc)
                raise ValidationError({self.page_query_param: [message]}) from None
            start = (page.number - 1) * size
        else:
            if offset and offset >= paginator.count:
                reason = f"no order at offset {offset}: the list has {paginator.count}"
                raise ValidationError({self.offset_query_param: [reason]})
            page, start = Page([], offset // size + 1, paginator), offset
        rows = order_page(
            orders=queryset, start=start, size=size, max_bytes=settings.API_PAGE_MAX_BYTES
        )
        page.object_list = rows
        self.page, self.page_start, self.by_offset = page, start, offset is not None
        self.display_page_controls = bool(self.get_next_link() or self.get_previous_link())
        return rows

    def get_next_link(self):
        end = self.page_start + len(self.page.object_list)
        if end >= self.page.paginator.count:
            return None
        if not self.by_offset and len(self.page.object_list) == self.page.paginator.per_page:
            return super().get_next_link()
        return self._offset_link(end, self.page.paginator.per_page)

    def get_previous_link(self):
        if not self.by_offset:
            return super().get_previous_link()
        if self.page_start == 0:
            return None
        before = max(self.page_start - self.page.paginator.per_page, 0)
        return self._offset_link(before, self.page_start - before)

    def _offset_link(self, offset: int, size: int) -> str:
        url = remove_query_param(self.request.build_absolute_uri(), self.page_query_param)
        url = replace_query_param(url, self.page_size_query_param, size)
        return replace_query_param(url, self.offset_query_param, offset)

    def get_html_context(self):
        if not self.by_offset:
            return super().get_html_context()
        links = {"previous_url": self.get_previous_link(), "next_url": self.get_next_link()}
        return {**links, "page_links": []}

    def get_schema_operation_parameters(self, view):
        offset = {
            "name": self.offset_query_param,
            "required": False,
            "in": "query",
            "description": "The first order of the page, counted from 0, instead of a page "
            "number (the next link of a page cut short by API_PAGE_MAX_BYTES uses it).",
            "schema": {"type": "integer", "minimum": 0},
        }
        return [*super().get_schema_operation_parameters(view), offset]


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

    @create_schema
    def create(self, request):
        body = OrderUpsertInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key = idempotency_key_clean(request.headers.get(IDEMPOTENCY_HEADER))
        wait = ack_wait_seconds(request)
        outcome = order_write(**body.validated_data, idempotency_key=key, wait_seconds=wait)
        headers = {"Location": f"/orders/{outcome.order_id}"}
        if outcome.replayed:
            headers["Idempotent-Replayed"] = "true"
        if outcome.pending and wait == 0:
            headers["Preference-Applied"] = "respond-async"
        if outcome.wait_skipped:
            headers[ACK_WAIT_SKIPPED_HEADER] = outcome.wait_skipped
        answer: OrderWriteResponse = {"order_id": outcome.order_id, "status": outcome.status}
        code = status.HTTP_202_ACCEPTED if outcome.pending else status.HTTP_200_OK
        return Response(answer, status=code, headers=headers)

    @list_schema
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(order_views(orders=page))

    @retrieve_schema
    def retrieve(self, request, order_id=None):
        path = OrderIdPathSerializer(data={"order_id": order_id})
        path.is_valid(raise_exception=True)
        answer: OrderEnvelope = {"order": order_get(**path.validated_data)}
        return Response(answer)

    @by_external_schema
    @action(detail=False, url_path=r"by-external/(?P<external_id>.*)")  # any stored id
    def by_external(self, request, external_id=None):
        path = ExternalIdPathSerializer(data={"external_id": external_id})
        path.is_valid(raise_exception=True)
        query = ByExternalQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        view = order_get_by_external_id(**path.validated_data, **query.validated_data)
        answer: OrderEnvelope = {"order": view}
        return Response(answer)
