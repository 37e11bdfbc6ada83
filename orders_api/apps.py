import logging

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger(__name__)


def warn_when_open(*, production: bool) -> None:
    """Log a warning when `production` runs with an open API (API_TOKENS empty)."""
    if production and not settings.API_TOKENS:
        logger.warning(
            "API_TOKENS is empty: the orders API is open to anyone who reaches it; set"
            " API_TOKENS (comma-separated) to require `Authorization: Bearer <token>`"
        )


class OrdersApiConfig(AppConfig):
    """The HTTP API: raw orders, the outbox and the ACK wait (database alias `default`)."""

    name = "orders_api"
    verbose_name = "Orders (API database)"

    def ready(self) -> None:
        warn_when_open(production=getattr(settings, "WARN_WHEN_API_OPEN", False))
