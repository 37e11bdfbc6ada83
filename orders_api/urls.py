"""Routes of the API: /health, /ready, /metrics and /orders."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from orders_api import views

router = SimpleRouter(trailing_slash=False)  # the Go service's paths: /orders, /orders/{id}
router.register("orders", views.OrderViewSet, basename="orders")

urlpatterns = [
    path("health", views.health, name="health"),
    path("ready", views.ready, name="ready"),
    path("metrics", views.MetricsView.as_view(), name="metrics"),
    *router.urls,
]
