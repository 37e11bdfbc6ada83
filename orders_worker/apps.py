from django.apps import AppConfig


class OrdersWorkerConfig(AppConfig):
    """The Kafka worker: processed orders under the upsert rules (database alias `worker`)."""

    name = "orders_worker"
    verbose_name = "Processed orders (worker database)"
