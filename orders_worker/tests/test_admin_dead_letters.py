"""The dead-letter admin: staff only, read-only, search and filters, and the replay action
(its messages, with and without a broker)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.urls import reverse

from orders_worker.models import DeadLetter, DeadLetterKind
from testkit.topics import TopicReader

from .support import recorded

pytestmark = pytest.mark.django_db(databases=["default", "worker"])


def changelist_url() -> str:
    return reverse("admin:orders_worker_deadletter_changelist")


def listed(response) -> list[int]:
    assert response.status_code == 200
    return [row.pk for row in response.context["cl"].result_list]


def two_letters() -> list[DeadLetter]:
    return recorded(
        (b"not json", "not valid JSON: Expecting value", DeadLetterKind.INVALID_MESSAGE),
        (b'{"big": 1}', "refused by the database: index row size", "database"),
    )


def replay(client, *letters: DeadLetter):
    return client.post(
        changelist_url(),
        {"action": "replay_selected", "_selected_action": [letter.pk for letter in letters]},
        follow=True,
    )


def shown_messages(response) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in response.context["messages"]]


def test_anonymous_users_are_sent_to_the_login_page(client):
    response = client.get(changelist_url())
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_sees_the_dead_letters_newest_first_with_their_error(admin_client):
    invalid, refused = two_letters()
    response = admin_client.get(changelist_url())
    assert listed(response) == [refused.pk, invalid.pk]
    body = response.content.decode()
    assert "refused by the database: index row size" in body
    assert "orders.events[0]@1" in body


@pytest.mark.parametrize(
    ("term", "expected"), [("key-1", [1]), ("VALID JSON", [0]), ("key-", [1, 0])]
)
def test_the_search_matches_the_key_or_the_error(admin_client, term, expected):
    letters = two_letters()
    assert listed(admin_client.get(changelist_url(), {"q": term})) == [
        letters[i].pk for i in expected
    ]


def test_the_filters_narrow_by_kind_and_by_replayed(admin_client):
    invalid, refused = two_letters()
    DeadLetter.objects.using("worker").filter(pk=invalid.pk).update(
        replay_count=1, replayed_at=refused.failed_at
    )
    assert listed(admin_client.get(changelist_url(), {"kind__exact": "database"})) == [refused.pk]
    assert listed(admin_client.get(changelist_url(), {"replayed": "no"})) == [refused.pk]
    assert listed(admin_client.get(changelist_url(), {"replayed": "yes"})) == [invalid.pk]


def test_a_dead_letter_is_read_only_and_its_page_shows_the_original_value(admin_client):
    invalid, _ = two_letters()
    url = f"{changelist_url()}{invalid.pk}/change/"
    body = admin_client.get(url).content.decode()
    assert "not json" in body and "not valid JSON: Expecting value" in body
    assert 'name="_save"' not in body
    assert admin_client.get(f"{changelist_url()}add/").status_code == 403
    assert admin_client.get(f"{changelist_url()}{invalid.pk}/delete/").status_code == 403
    assert admin_client.post(url, {"error": "edited"}).status_code == 403
    invalid.refresh_from_db()
    assert invalid.error == "not valid JSON: Expecting value"


def test_staff_who_may_only_view_do_not_get_the_replay_action(client, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw-123456", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_deadletter"))
    client.force_login(user)
    invalid, _ = two_letters()
    response = client.get(changelist_url())
    assert listed(response) and "replay_selected" not in response.content.decode()
    replay(client, invalid)
    invalid.refresh_from_db()
    assert invalid.replay_count == 0


def test_the_replay_action_with_no_broker_says_so_and_replays_nothing(admin_client):
    """No broker answers (tests without the `broker` marker see none): an error message on
    the changelist, not a 500, and nothing counts as replayed."""
    invalid, refused = two_letters()

    response = replay(admin_client, invalid, refused)

    assert response.status_code == 200
    [(level, text)] = shown_messages(response)
    assert level == "error"
    assert text.startswith("Nothing was replayed: the broker could not be reached")
    counts = set(DeadLetter.objects.using("worker").values_list("replay_count", flat=True))
    assert counts == {0}


@pytest.mark.broker
def test_the_replay_action_publishes_the_selected_and_says_so(admin_client, unique_topics):
    invalid, refused = two_letters()
    events = TopicReader(settings.ORDERS_EVENTS_TOPIC)
    try:
        response = replay(admin_client, refused)
        [record] = events.read_until(lambda records: records)
    finally:
        events.close()

    assert (record.key, record.value) == (b"key-1", b'{"big": 1}')
    assert shown_messages(response) == [
        ("success", f"1 dead letter(s) replayed to {settings.ORDERS_EVENTS_TOPIC}: {refused.pk}.")
    ]
    refused.refresh_from_db()
    assert refused.replay_count == 1 and refused.replayed_at is not None
    invalid.refresh_from_db()
    assert invalid.replay_count == 0
