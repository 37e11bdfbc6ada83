from django.apps import AppConfig


class OrdersApiConfig(AppConfig):
    """The HTTP API: raw orders, the outbox and the ACK wait (database alias `default`)."""

    name = "orders_api"
    verbose_name = "Orders (API database)"
