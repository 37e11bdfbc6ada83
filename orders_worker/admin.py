"""Admin for the worker database: processed orders, and dead letters (read-only, with replay)."""

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.text import Truncator

from orders_worker.dead_letters import DeadLetterReplayFailed, dead_letters_replay
from orders_worker.models import DeadLetter, ProcessedOrder
from orderstream.admin import OrderAdminBase, ReadOnlyModelAdmin

# The part of a dead letter's value its page shows (the value may be up to 1 MB).
VALUE_PREVIEW_CHARS = 5_000
MESSAGE_LEVELS = {"success": messages.SUCCESS, "warning": messages.WARNING, "error": messages.ERROR}


@admin.register(ProcessedOrder)
class ProcessedOrderAdmin(OrderAdminBase):
    using = "worker"
    readonly_fields = OrderAdminBase.readonly_fields + ("last_event_id", "processed_at")


class ReplayedFilter(admin.SimpleListFilter):
    """Whether a dead letter was replayed at least once."""

    title = "replayed"
    parameter_name = "replayed"

    def lookups(self, request, model_admin):
        return [("no", "not replayed"), ("yes", "replayed")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(replayed_at__isnull=self.value() == "no")
        return queryset


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyModelAdmin):
    """The records the worker rejected, read-only; the one change allowed is the action
    "Replay the selected dead letters" (`dead_letters.dead_letters_replay`)."""

    using = "worker"
    list_display = (
        "id",
        "failed_at",
        "source",
        "kind",
        "key_text",
        "error_short",
        "value_length",
        "replay_count",
        "replayed_at",
    )
    list_filter = ("kind", ReplayedFilter)
    search_fields = ("key_text", "error")
    search_help_text = "Part of the key (the order id, usually) or of the error."
    ordering = ("-id",)
    show_full_result_count = False
    fields = (
        "id",
        "source",
        "failed_at",
        "kind",
        "error",
        "key_text",
        "value_length",
        "value_as_text",
        "replay_count",
        "replayed_at",
    )
    readonly_fields = fields
    actions = ("replay_selected",)

    @admin.display(description="source (topic[partition]@offset)")
    def source(self, obj):
        return str(obj)

    @admin.display(description="error")
    def error_short(self, obj):
        return Truncator(obj.error).chars(80)

    @admin.display(description="value (the original bytes as UTF-8, the start of them)")
    def value_as_text(self, obj):
        text = bytes(obj.value).decode("utf-8", "backslashreplace")
        return format_html(
            '<pre style="white-space: pre-wrap; word-break: break-all">{}</pre>',
            Truncator(text).chars(VALUE_PREVIEW_CHARS),
        )

    @admin.action(description="Replay the selected dead letters", permissions=["row_action"])
    def replay_selected(self, request, queryset):
        try:
            report = dead_letters_replay(ids=queryset.values_list("pk", flat=True))
        except DeadLetterReplayFailed as exc:
            self.message_user(request, f"Nothing was replayed: {exc}", messages.ERROR)
            return
        for level, text in report.summary():
            self.message_user(request, text, MESSAGE_LEVELS[level])
