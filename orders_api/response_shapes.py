"""The bodies the API answers with, each shape declared once, here.

A shape is a TypedDict. The code that answers builds the body as that TypedDict: a plain
dict, rendered as it is (no serializer on the way: rendering the OrderView field by field
took 0.13-0.19 ms of CPU per GET /orders/{id}, the hot path, which answered 0-17 % faster
without it; measured through Django's test client). Each key's annotation,
`Annotated[type, <DRF field>]`, also carries the field the OpenAPI schema describes it
with: `shape_serializer` turns a shape into the serializer drf-spectacular writes the
component from (named after the shape), which no answer is rendered through. The test of
the shapes (tests/test_response_shapes.py) checks that each body has the component's keys
and renders as its serializer would.
"""

import uuid
from decimal import Decimal
from typing import Annotated, Any, TypedDict, get_type_hints

from rest_framework import serializers

from orderstream.statuses import PENDING, Operation, Processing


def shape_serializer(shape: type) -> type[serializers.Serializer]:
    """The schema's serializer of `shape`: its keys in their order, each with the DRF
    field of its annotation; `<shape>Serializer`, whose component drf-spectacular names
    `<shape>` and describes with the shape's docstring."""
    fields = {}
    for key, hint in get_type_hints(shape, include_extras=True).items():
        metadata = getattr(hint, "__metadata__", ())
        declared = [item for item in metadata if isinstance(item, serializers.Field)]
        if len(declared) != 1:
            raise TypeError(f"{shape.__name__}.{key}: expected Annotated[type, <one DRF field>]")
        fields[key] = declared[0]
    namespace = {"__module__": shape.__module__, "__doc__": shape.__doc__, **fields}
    return type(f"{shape.__name__}Serializer", (serializers.Serializer,), namespace)


class OrderView(TypedDict):
    """An order as GET answers it: the API row, overridden by the worker's Redis result."""

    order_id: Annotated[uuid.UUID, serializers.UUIDField()]
    user_id: Annotated[uuid.UUID, serializers.UUIDField()]
    # The columns' numeric(20, 2); the selectors hand over only amounts they hold. Rendered
    # as a JSON number with exactly these digits (orders_api.renderers): 5.00, never "5.00"
    # or a float.
    amount: Annotated[
        Decimal,
        serializers.DecimalField(max_digits=20, decimal_places=2, coerce_to_string=False),
    ]
    status: Annotated[
        str,
        serializers.CharField(
            help_text="API row status (new, updated, deleted), or the worker's order_status "
            "(done, deleted) once it has processed the order."
        ),
    ]
    payload_json: Annotated[Any, serializers.JSONField(help_text="The stored JSON object.")]
    created_at: Annotated[str, serializers.CharField(help_text="RFC 3339")]
    updated_at: Annotated[str, serializers.CharField(help_text="RFC 3339")]
    bucket: Annotated[
        int, serializers.IntegerField(help_text="First byte of the order uuid mod 4.")
    ]
    processing: Annotated[
        str,
        serializers.ChoiceField(
            choices=Processing.choices,
            help_text="What the pipeline did with the order's newest version: pending "
            "(accepted, not yet answered by the worker), done, deleted, or rejected (see "
            "reason).",
        ),
    ]
    reason: Annotated[
        str | None,
        serializers.CharField(
            allow_null=True,
            help_text="The worker's reason when processing is rejected; null otherwise.",
        ),
    ]
    version: Annotated[
        int | None,
        serializers.IntegerField(
            allow_null=True,
            min_value=1,
            help_text="The order's last version the worker applied; null while none.",
        ),
    ]


OrderViewSerializer = shape_serializer(OrderView)


class OrderEnvelope(TypedDict):
    """The answer of GET /orders/{order_id} and /orders/by-external/{external_id}."""

    order: Annotated[OrderView, OrderViewSerializer()]


class OrderWriteResponse(TypedDict):
    """Answer of POST /orders."""

    order_id: Annotated[uuid.UUID, serializers.UUIDField()]
    status: Annotated[
        str,
        serializers.ChoiceField(
            choices=[*Operation.values, PENDING],
            help_text='The worker\'s result, or "pending" when the answer did not wait for it.',
        ),
    ]


class ErrorItem(TypedDict):
    field: Annotated[
        str,
        serializers.CharField(help_text="The input field, header or part of the request at fault."),
    ]
    reason: Annotated[str, serializers.CharField()]


ErrorItemSerializer = shape_serializer(ErrorItem)


class Error(TypedDict):
    """The body of every error answer."""

    error: Annotated[
        str, serializers.CharField(help_text='"<field>: <reason>" of the first problem.')
    ]
    field: Annotated[str, serializers.CharField()]
    reason: Annotated[str, serializers.CharField()]
    errors: Annotated[
        list[ErrorItem], ErrorItemSerializer(many=True, help_text="Every problem found.")
    ]


# /health and /ready (no docstrings: their components have no description).
class Health(TypedDict):
    status: Annotated[str, serializers.CharField()]


class Readiness(TypedDict):
    status: Annotated[str, serializers.ChoiceField(choices=["ready", "degraded", "unavailable"])]
    down: Annotated[list[str], serializers.ListField(child=serializers.CharField())]
    checks: Annotated[dict[str, str], serializers.DictField(child=serializers.CharField())]


OrderEnvelopeSerializer = shape_serializer(OrderEnvelope)
OrderWriteResponseSerializer = shape_serializer(OrderWriteResponse)
ErrorSerializer = shape_serializer(Error)
HealthSerializer = shape_serializer(Health)
ReadinessSerializer = shape_serializer(Readiness)
