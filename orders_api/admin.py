"""Admin for the API database: its orders, and its outbox of events (read-only, with retry)."""

import uuid

from django.contrib import admin, messages
from django.db.models import Q
from django.utils.html import format_html
from django.utils.text import Truncator

from orders_api.models import Order, OutboxEvent
from orders_api.outbox_operations import outbox_events_unpark
from orderstream.admin import OrderAdminBase, ReadOnlyModelAdmin


@admin.register(Order)
class OrderAdmin(OrderAdminBase):
    """The API's orders, with what the worker said of them (written by the ACK recorder)."""

    using = "default"
    list_display = (*OrderAdminBase.list_display, "outcome", "outcome_version")
    list_filter = (*OrderAdminBase.list_filter, "outcome")


class OutboxStateFilter(admin.SimpleListFilter):
    """Where a row is in the relay's life: waiting to be published, parked, published."""

    title = "state"
    parameter_name = "state"
    STATES = {
        "unpublished": Q(published_at__isnull=True, parked_at__isnull=True),
        "parked": Q(parked_at__isnull=False),
        "published": Q(published_at__isnull=False),
    }

    def lookups(self, request, model_admin):
        return [(state, state) for state in self.STATES]

    def queryset(self, request, queryset):
        state = self.STATES.get(self.value())
        return queryset if state is None else queryset.filter(state)


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyModelAdmin):
    """The outbox, read-only: rows are written only with their order, and deleting one
    would lose its event. The one change allowed is putting parked rows back in the
    relay's queue (the action "Retry the selected parked events")."""

    using = "default"
    list_display = (
        "id",
        "order_id",
        "version",
        "topic",
        "created_at",
        "published_at",
        "parked_at",
        "attempts",
        "last_error_short",
    )
    list_filter = (OutboxStateFilter,)
    # Matched exactly, as uuids, by get_search_results below (both are indexed).
    search_fields = ("order_id", "event_id")
    search_help_text = "An order id or an event id (the whole uuid)."
    # Newest first; the primary key's order, which needs no sort of the whole table.
    ordering = ("-id",)
    show_full_result_count = False
    fields = (
        "id",
        "event_id",
        "order_id",
        "version",
        "topic",
        "created_at",
        "next_attempt_at",
        "published_at",
        "parked_at",
        "attempts",
        "last_error",
        "value_as_published",
    )
    readonly_fields = fields
    actions = ("retry_parked",)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            wanted = uuid.UUID(term)
        except ValueError:
            return queryset.none(), False
        return queryset.filter(Q(order_id=wanted) | Q(event_id=wanted)), False

    @admin.display(description="last error")
    def last_error_short(self, obj):
        return Truncator(obj.last_error).chars(80)

    @admin.display(description="value (the event's JSON, as published)")
    def value_as_published(self, obj):
        # The stored text itself, not a re-encoding: that would rewrite numbers and escapes.
        return format_html(
            '<pre style="white-space: pre-wrap; word-break: break-all">{}</pre>', obj.value
        )

    @admin.action(description="Retry the selected parked events", permissions=["row_action"])
    def retry_parked(self, request, queryset):
        count = outbox_events_unpark(event_ids=queryset.values_list("event_id", flat=True))
        if count:
            self.message_user(
                request, f"{count} parked event(s) put back in the relay's queue.", messages.SUCCESS
            )
        else:
            self.message_user(
                request,
                "None of the selected events is parked and unpublished: nothing changed.",
                messages.WARNING,
            )
