"""`Idempotency-Key`: the request fingerprint (pure) and the key records (API database)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError
from django.utils import timezone

from orders_api.errors import IdempotencyKeyReused
from orders_api.idempotency import (
    idempotency_find,
    idempotency_purge,
    idempotency_record_build,
    is_key_conflict,
    request_fingerprint,
)
from orders_api.models import IdempotencyKey

USER = uuid.UUID(int=1)
OTHER_USER = uuid.UUID(int=2)
ORDER = uuid.UUID(int=3)
TTL = 3600


def fingerprint(**changes) -> str:
    request = {"user_id": USER, "order_id": ORDER, "payload": {"a": 1}, "delete": False}
    return request_fingerprint(**(request | changes))


# ---------------------------------------------------------------- fingerprint
@pytest.mark.parametrize(
    ("request_fields", "canonical"),
    [
        (
            {"order_id": None, "payload": {"b": Decimal("1.50"), "a": [1, None]}, "delete": False},
            '["00000000-0000-0000-0000-000000000001","",{"a":[1,null],"b":"1.50"},false]',
        ),
        (
            {"order_id": ORDER, "payload": None, "delete": True},
            '["00000000-0000-0000-0000-000000000001","00000000-0000-0000-0000-000000000003",'
            "null,true]",
        ),
    ],
)
def test_the_fingerprint_is_the_sha256_of_the_canonical_request(request_fields, canonical):
    """Stored with each key, so it must not change between releases: compact JSON, keys
    sorted, numbers a Decimal holds written as their text."""
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    assert request_fingerprint(user_id=USER, **request_fields) == expected


def test_the_fingerprint_ignores_the_order_of_the_payload_keys():
    assert fingerprint(payload={"a": 1, "b": 2}) == fingerprint(payload={"b": 2, "a": 1})


@pytest.mark.parametrize(
    "changes",
    [
        {"order_id": uuid.UUID(int=4)},  # the same key and body for another order
        {"order_id": None},  # a create
        {"user_id": OTHER_USER},
        {"payload": {"a": 2}},
        {"delete": True},
    ],
)
def test_a_different_request_has_a_different_fingerprint(changes):
    assert fingerprint(**changes) != fingerprint()


# ---------------------------------------------------------------- key conflicts
@pytest.mark.parametrize(
    ("message", "conflict"),
    [
        ('duplicate key value violates unique constraint "idempotency_user_key_uniq"', True),
        ('duplicate key value violates unique constraint "orders_pkey"', False),
    ],
)
def test_only_the_unique_index_of_the_keys_is_a_key_conflict(message, conflict):
    assert is_key_conflict(IntegrityError(message)) is conflict


# ---------------------------------------------------------------- records
@pytest.fixture
def ttl(settings):
    settings.IDEMPOTENCY_KEY_TTL_SECONDS = TTL
    return TTL


def a_record(*, age: float, user_id=USER, key="k-1", fingerprint="f" * 64) -> IdempotencyKey:
    """A saved record made `age` seconds ago."""
    return IdempotencyKey.objects.create(
        user_id=user_id,
        key=key,
        fingerprint=fingerprint,
        order_id=uuid.uuid4(),
        event_id=uuid.uuid4(),
        operation="created",
        created_at=timezone.now() - timedelta(seconds=age),
    )


@pytest.mark.django_db
def test_an_unexpired_key_with_the_same_fingerprint_is_found(ttl):
    record = a_record(age=ttl - 60)
    assert idempotency_find(user_id=USER, key="k-1", fingerprint="f" * 64) == record


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("user_id", "key", "age"),
    [(OTHER_USER, "k-1", 0), (USER, "k-2", 0), (USER, "k-1", TTL + 60)],
)
def test_another_users_key_another_key_or_an_expired_key_is_not_found(ttl, user_id, key, age):
    a_record(age=age)
    assert idempotency_find(user_id=user_id, key=key, fingerprint="f" * 64) is None


@pytest.mark.django_db
def test_a_key_used_for_another_request_is_refused(ttl):
    a_record(age=0)
    with pytest.raises(IdempotencyKeyReused) as raised:
        idempotency_find(user_id=USER, key="k-1", fingerprint="e" * 64)
    error = raised.value
    assert error.field == "Idempotency-Key"
    assert error.reason == "was already used with a different request; use a new key"


@pytest.mark.django_db
def test_building_a_record_deletes_only_the_expired_record_of_the_same_user_and_key(ttl):
    expired = a_record(age=ttl + 60)
    kept = [
        a_record(age=ttl + 60, key="k-2"),
        a_record(age=ttl + 60, user_id=OTHER_USER),
        a_record(age=ttl - 60, user_id=uuid.uuid4()),
    ]
    event_id = str(uuid.uuid4())
    before = timezone.now()
    record = idempotency_record_build(
        user_id=USER,
        key="k-1",
        fingerprint="a" * 64,
        order_id=ORDER,
        event_id=event_id,
        operation="updated",
    )
    assert not IdempotencyKey.objects.filter(pk=expired.pk).exists()
    assert set(IdempotencyKey.objects.values_list("pk", flat=True)) == {r.pk for r in kept}
    assert record.pk is None
    assert (record.user_id, record.key, record.fingerprint) == (USER, "k-1", "a" * 64)
    assert (record.order_id, record.event_id, record.operation) == (ORDER, event_id, "updated")
    assert before <= record.created_at <= timezone.now()


@pytest.mark.django_db
def test_building_a_record_keeps_an_unexpired_record_of_the_same_key(ttl):
    record = a_record(age=ttl - 60)
    idempotency_record_build(
        user_id=USER, key="k-1", fingerprint="a" * 64, order_id=ORDER, event_id="e", operation="x"
    )
    assert IdempotencyKey.objects.filter(pk=record.pk).exists()


@pytest.mark.django_db
def test_the_purge_deletes_every_expired_key_and_counts_them(ttl):
    a_record(age=ttl + 60)
    a_record(age=ttl + 60, key="k-2", user_id=OTHER_USER)
    fresh = a_record(age=ttl - 60, key="k-3")
    assert idempotency_purge() == 2
    assert list(IdempotencyKey.objects.all()) == [fresh]
