"""Input shapes of the HTTP API: bodies, paths and queries (validation only; no business
rules here). The bodies it answers with are declared in `response_shapes.py`.

Their rules across fields, as the OpenAPI schema states them, are in `schema.py`."""

from __future__ import annotations

import re
import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.utils import html

from orders_api.flat_serializer import FlatSerializer
from orders_api.parsers import json_loads_strict
from orderstream.exact_json import InexactNumber
from orderstream.order_fields import external_id_refusal
from orderstream.statuses import Operation, OrderStatus

# order_id values that mean "create a new order" (the Go service's conventions).
CREATE_MARKERS = (None, "", "0", 0)
# Accepted `status` values on POST: "deleted" soft-deletes, the others are no-ops.
STATUS_DELETED = Operation.DELETED.value
ACCEPTED_STATUSES = ("", OrderStatus.NEW, Operation.CREATED, Operation.UPDATED, STATUS_DELETED)
# The values of `?wait=` on POST (either case); anything else, an empty value too, is a 400.
WAIT_TRUE_WORDS = ("true", "1", "yes", "on")
WAIT_FALSE_WORDS = ("false", "0", "no", "off")


# The one accepted form of a uuid: 8-4-4-4-12 ASCII hex digits, either case. Python's
# uuid.UUID also takes braces, `urn:uuid:`, no hyphens, surrounding spaces and non-ASCII
# digits: several spellings of one id, and inputs a client did not mean as a uuid.
CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", re.ASCII)


def canonical_uuid(text: str) -> uuid.UUID | None:
    """The uuid `text` spells in the canonical form; None for any other text."""
    return uuid.UUID(text) if CANONICAL_UUID.fullmatch(text) else None


@extend_schema_field(
    {
        "type": "string",
        "format": "uuid",
        "nullable": True,
        "description": 'Empty, absent, null or "0" creates an order; a uuid updates that order.',
    }
)
class OrderIdField(serializers.Field):
    """`order_id` of POST /orders: None for a create, a UUID for an update."""

    default_error_messages = {"invalid": 'must be empty, "0" or an order uuid'}

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("default", None)
        super().__init__(**kwargs)

    def validate_empty_values(self, data):
        if data in CREATE_MARKERS and not isinstance(data, bool):
            return True, None
        return super().validate_empty_values(data)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if data in ("", "0"):
            return None
        order_id = canonical_uuid(data)
        if order_id is None:
            self.fail("invalid")
        return order_id

    def to_representation(self, value):
        return None if value is None else str(value)


def _unstorable_text(value) -> str | None:
    """The first string or key in `value` PostgreSQL cannot store (NUL, unpaired
    surrogate), or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return item
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return item
    return None


# A string that holds a JSON object: a format of our own (OpenAPI 3.0 has none for it).
JSON_OBJECT_FORMAT = "json-object"
JSON_OBJECT_TEXT = "a string holding a JSON object"
STORABLE_TEXT_ERROR = "must not contain NUL (\\u0000) characters or unpaired surrogates"


@extend_schema_field(
    {
        "oneOf": [
            {"type": "object", "additionalProperties": True},
            {"type": "string", "format": JSON_OBJECT_FORMAT, "description": JSON_OBJECT_TEXT},
        ],
        "description": "The order data: a JSON object, or a string holding one.",
    }
)
class PayloadJsonField(serializers.Field):
    """`payload_json`: a JSON object, or a string that holds a JSON object."""

    default_error_messages = {
        "invalid": "must be a JSON object or a string holding a JSON object",
        "malformed": "is a string but not valid JSON: {error}",
        "not_object": "must hold a JSON object, got {kind}",
        "unstorable": STORABLE_TEXT_ERROR,
    }

    def validate_empty_values(self, data):
        if data is None or data == "":
            return True, None  # treated as absent
        return super().validate_empty_values(data)

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                data = json_loads_strict(data)
            except InexactNumber as exc:
                raise serializers.ValidationError(str(exc), code="inexact") from None
            except ValueError as exc:
                self.fail("malformed", error=exc)
            if not isinstance(data, dict):
                self.fail("not_object", kind=type(data).__name__)
        elif not isinstance(data, dict):
            self.fail("invalid")
        if _unstorable_text(data) is not None:
            self.fail("unstorable")
        return data

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "object", "additionalProperties": True})
class ObjectField(serializers.JSONField):
    """A JSON object (not an array, string or number)."""

    default_error_messages = {
        "not_object": "must be a JSON object",
        "unstorable": STORABLE_TEXT_ERROR,
    }

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            self.fail("not_object")
        if _unstorable_text(data) is not None:
            self.fail("unstorable")
        return data


UUID_ERRORS = {
    "invalid": "must be a uuid",
    "required": "is required (a uuid)",
    "null": "is required (a uuid)",
}


@extend_schema_field(OpenApiTypes.UUID)
class StrictUUIDField(serializers.UUIDField):
    """A uuid given as a string in its canonical form (DRF would also take an integer)."""

    default_error_messages = UUID_ERRORS

    def get_value(self, dictionary):
        # DRF reads an empty query (or form) value of an optional field as absent; an
        # empty `?user_id=` is a bad uuid, not a missing filter.
        if html.is_html_input(dictionary) and dictionary.get(self.field_name) == "":
            return ""
        return super().get_value(dictionary)

    def to_internal_value(self, data):
        if isinstance(data, uuid.UUID):
            return data
        value = canonical_uuid(data) if isinstance(data, str) else None
        if value is None:
            self.fail("invalid")
        return value


class OrderUpsertInputSerializer(FlatSerializer):
    """Body of POST /orders."""

    order_id = OrderIdField()
    user_id = StrictUUIDField()
    status = serializers.ChoiceField(
        choices=ACCEPTED_STATUSES,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text='"deleted" soft-deletes the order; other values change nothing.',
        error_messages={"invalid_choice": 'must be "deleted" or omitted, got "{input}"'},
    )
    payload_json = PayloadJsonField(required=False, allow_null=True)
    payload = ObjectField(required=False, allow_null=True, help_text="The order data as an object.")

    def validate(self, attrs):
        delete = attrs.get("status") == STATUS_DELETED
        payload = attrs.get("payload_json")
        if payload is None:
            payload = attrs.get("payload")
        if delete and attrs.get("order_id") is None:
            raise serializers.ValidationError(
                {"order_id": 'is required to delete an order (status "deleted")'}
            )
        if payload is None and not delete:
            # Name the field the client sent as null (or ""); payload_json when neither.
            sent_null = [name for name in ("payload_json", "payload") if name in attrs]
            if sent_null:
                reason = "must be a JSON object, not null (payload_json or payload is required)"
                raise serializers.ValidationError({sent_null[0]: reason})
            raise serializers.ValidationError(
                {"payload_json": "one of payload_json or payload is required"}
            )
        # A delete ignores its payload: no id of it is stored.
        refusal = None if delete else external_id_refusal(payload)
        if refusal:
            raise serializers.ValidationError({"payload.id": refusal})
        return {
            "order_id": attrs.get("order_id"),
            "user_id": attrs["user_id"],
            "payload": payload,
            "delete": delete,
        }


class ExternalIdPathSerializer(FlatSerializer):
    """Path of GET /orders/by-external/{external_id}: any text but NUL (which no stored
    payload.id holds, and PostgreSQL cannot compare); slashes and the empty id included,
    as a payload.id may hold them."""

    external_id = serializers.CharField(trim_whitespace=False, allow_blank=True)


class ByExternalQuerySerializer(FlatSerializer):
    """Query of GET /orders/by-external/{external_id}."""

    user_id = StrictUUIDField()


class StrictChoiceField(serializers.ChoiceField):
    """A choice; an empty query value is a bad choice (DRF reads it as absent)."""

    def get_value(self, dictionary):
        if html.is_html_input(dictionary) and dictionary.get(self.field_name) == "":
            return ""
        return super().get_value(dictionary)


class OrderListQuerySerializer(FlatSerializer):
    """Query of GET /orders."""

    user_id = StrictUUIDField(required=False)
    status = StrictChoiceField(choices=OrderStatus.choices, required=False)


class OrderIdPathSerializer(FlatSerializer):
    order_id = StrictUUIDField()
