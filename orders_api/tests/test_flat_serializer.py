"""FlatSerializer: each instance validates with fields of its own, and a field that holds
other fields is refused when the class is defined."""

import pytest
from rest_framework import serializers

from orders_api.flat_serializer import FlatSerializer
from orders_api.serializers import OrderUpsertInputSerializer


class Pair(FlatSerializer):
    name = serializers.CharField(max_length=3)
    count = serializers.IntegerField(min_value=0)


def test_each_instance_binds_fields_of_its_own():
    first, second = Pair(data={"name": "abc", "count": 1}), Pair(data={"name": "toolong"})

    assert first.is_valid(), first.errors
    assert not second.is_valid()
    assert first.validated_data == {"name": "abc", "count": 1}
    assert set(second.errors) == {"name", "count"}
    assert first.fields["name"] is not second.fields["name"]
    assert first.fields["name"].parent is first and second.fields["name"].parent is second
    declared = Pair._declared_fields["name"]
    assert (declared.field_name, declared.parent) == (None, None)  # stays unbound


def test_the_create_input_validates_like_a_plain_serializer():
    body = {"user_id": "7d0e1f3a-1b2c-4d5e-8f90-a1b2c3d4e5f6", "payload": {"id": "x"}}
    valid, invalid = OrderUpsertInputSerializer(data=body), OrderUpsertInputSerializer(data={})

    assert valid.is_valid(), valid.errors
    assert str(valid.validated_data["user_id"]) == body["user_id"]
    assert not invalid.is_valid()
    assert "user_id" in invalid.errors


@pytest.mark.parametrize(
    "field",
    [serializers.ListField(child=serializers.IntegerField()), Pair(), Pair(many=True)],
    ids=["list field", "nested serializer", "nested list"],
)
def test_a_field_holding_other_fields_is_refused(field):
    with pytest.raises(TypeError, match="fields holding other fields: inner"):
        type("Nested", (FlatSerializer,), {"inner": field})
