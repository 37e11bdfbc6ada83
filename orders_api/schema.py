"""The OpenAPI description of the HTTP API (drf-spectacular): parameters, bodies,
error answers and examples of each operation, applied to the views as decorators.

The schema is served at /api/schema/ (Swagger UI at /docs); what it says is checked against
the API by the Schemathesis run (orderstream/tests/test_schema_fuzz.py).
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)

from orders_api.exceptions import error_body
from orders_api.idempotency import HEADER as IDEMPOTENCY_HEADER
from orders_api.response_shapes import (
    ErrorSerializer,
    HealthSerializer,
    OrderEnvelopeSerializer,
    OrderViewSerializer,
    OrderWriteResponseSerializer,
    ReadinessSerializer,
)
from orders_api.serializers import (
    JSON_OBJECT_FORMAT,
    STATUS_DELETED,
    WAIT_FALSE_WORDS,
    WAIT_TRUE_WORDS,
    ByExternalQuerySerializer,
    OrderListQuerySerializer,
    OrderUpsertInputSerializer,
)

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


class OrderUpsertInputSchema(OpenApiSerializerExtension):
    """The rules of POST /orders across its fields, in the schema: the order data
    (`payload_json` or `payload`, not null) is required unless the request deletes, and
    a delete names the order's uuid."""

    target_class = OrderUpsertInputSerializer

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        # A pattern, not an enum: drf-spectacular would turn an enum into the status component.
        deleted = {"type": "string", "pattern": f"^{STATUS_DELETED}$"}
        data_or_delete = [
            {
                "required": ["payload_json"],
                "properties": {
                    "payload_json": {
                        "oneOf": [
                            {"type": "object"},
                            {"type": "string", "format": JSON_OBJECT_FORMAT},
                        ]
                    }
                },
            },
            {"required": ["payload"], "properties": {"payload": {"type": "object"}}},
            {"required": ["status"], "properties": {"status": deleted}},
        ]
        delete_names_order = [
            {"properties": {"status": {"not": deleted}}},
            {
                "required": ["order_id"],
                "properties": {"order_id": {"type": "string", "format": "uuid"}},
            },
        ]
        schema["allOf"] = [{"anyOf": data_or_delete}, {"anyOf": delete_names_order}]
        return schema


health_schema = extend_schema(
    responses=HealthSerializer,
    description="Liveness: answers as long as the process serves requests.",
)

ready_schema = extend_schema(
    responses={200: ReadinessSerializer, 503: ReadinessSerializer},
    description="Readiness: 200 while the API's own database answers (it can accept "
    "writes): `ready` when every dependency answers, `degraded` naming the others that do "
    "not (the worker's database, Redis, the broker: orders are still accepted and kept in "
    "the outbox); 503 `unavailable` when its database does not. Each check's state is in "
    "`checks`.",
)

create_schema = extend_schema(
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
            {"type": "string", "enum": [*WAIT_TRUE_WORDS, *WAIT_FALSE_WORDS]},
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
            description="Stored and published; not yet acknowledged. When a wait was "
            "asked for but not done, the header Ack-Wait-Skipped says why: `busy` (too "
            "many waits in this process), `pipeline-behind` (the outbox or the ACKs are "
            "late), `listener-not-ready` (no ACK reader).",
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

list_schema = extend_schema(
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

retrieve_schema = extend_schema(
    summary="One order by its order_id",
    parameters=[OpenApiParameter("order_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
    responses={200: OrderEnvelopeSerializer, **ERRORS},
)

by_external_schema = extend_schema(
    summary="The newest order of a user with this external id (payload.id)",
    parameters=[
        OpenApiParameter("external_id", OpenApiTypes.STR, OpenApiParameter.PATH),
        ByExternalQuerySerializer,
    ],
    responses={200: OrderEnvelopeSerializer, **ERRORS},
)
