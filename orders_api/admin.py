"""Admin for the API database's orders."""

from django.contrib import admin

from orderstream.admin import OrderAdminBase

from .models import Order


@admin.register(Order)
class OrderAdmin(OrderAdminBase):
    using = "default"
