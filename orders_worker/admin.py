"""Admin for the worker database's processed orders."""

from django.contrib import admin

from orderstream.admin import OrderAdminBase

from .models import ProcessedOrder


@admin.register(ProcessedOrder)
class ProcessedOrderAdmin(OrderAdminBase):
    using = "worker"
    readonly_fields = OrderAdminBase.readonly_fields + ("last_event_id", "processed_at")
