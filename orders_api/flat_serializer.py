"""A DRF serializer of flat fields that is cheap to make, for the create's hot path.

DRF gives every serializer instance its own fields by deep-copying the declared ones
(`Serializer.get_fields`), and a field's deep copy runs its `__init__` again: for the
create's input and answer that was about a tenth of the request's CPU. A field that holds
no other field needs no deep copy: a shallow copy is its own object, which `bind` then
gives this instance's name, parent and source. A field that holds others (a nested
serializer, a ListField's or DictField's child) would share them, so it is refused.
"""

from __future__ import annotations

import copy

from rest_framework import serializers


class FlatSerializer(serializers.Serializer):
    """A Serializer whose declared fields are all flat (see the module)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        nested = [
            name
            for name, field in cls._declared_fields.items()
            if isinstance(field, serializers.BaseSerializer) or hasattr(field, "child")
        ]
        if nested:
            raise TypeError(f"{cls.__name__}: fields holding other fields: {', '.join(nested)}")

    def get_fields(self):
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}
