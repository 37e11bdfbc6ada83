"""Admin helpers shared by both apps."""

from django.contrib import admin
from django.contrib.auth import get_permission_codename


class MultiDBModelAdmin(admin.ModelAdmin):
    """A ModelAdmin whose reads and writes go to the database alias `using`.

    Taken from the Django documentation's "Exposing multiple databases in Django's
    admin interface"; the router already sends the model there, this makes it explicit
    for the admin's own queries (changelist counts, related lookups, deletes).
    """

    using = "default"

    def save_model(self, request, obj, form, change):
        obj.save(using=self.using)

    def delete_model(self, request, obj):
        obj.delete(using=self.using)

    def get_queryset(self, request):
        return super().get_queryset(request).using(self.using)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return super().formfield_for_foreignkey(db_field, request, using=self.using, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        return super().formfield_for_manytomany(db_field, request, using=self.using, **kwargs)


class ReadOnlyModelAdmin(MultiDBModelAdmin):
    """A MultiDBModelAdmin that shows rows but never adds, changes or deletes them.

    For rows that only the application writes: an edit here would bypass its rules.
    """

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_row_action_permission(self, request):
        """An action that changes rows through the application's rules (retry a parked
        event, replay a dead letter) needs the model's change permission, which this admin
        never uses for edits."""
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")


class OrderAdminBase(ReadOnlyModelAdmin):
    """Read-only list, search (order id, user id, external id = payload.id), status filter.

    Orders change only through the API (which writes the outbox event with the row) and
    the worker (which applies the upsert rules); an edit here would bypass both.
    """

    list_display = (
        "order_id",
        "user_id",
        "external_id",
        "status",
        "amount",
        "version",
        "updated_at",
    )
    list_filter = ("status",)
    search_fields = ("order_id", "user_id", "payload__id")
    ordering = ("-updated_at",)
    readonly_fields = ("order_id", "created_at", "updated_at", "version", "bucket")
    show_full_result_count = False

    @admin.display(description="external id")
    def external_id(self, obj):
        payload = obj.payload if isinstance(obj.payload, dict) else {}
        return payload.get("id", "")
