"""The benchmark's baseline: the least a DRF API can do for the same requests.

A URLconf used only by `bench.baseline_settings` (never routed in the real
app): `POST /orders` validates a user id and a payload with a plain serializer and writes
an order row and an outbox row in one transaction; `GET /orders/{order_id}` reads one
order by primary key through a ModelSerializer. Same tables, same database, same
workers and threads as the API (bench/servers.py `start_baseline`).
Its outbox rows are written already published, so the relay leaves them alone and the
worker never sees them: the baseline measures the API's side only.
"""

from __future__ import annotations

import json
import uuid

from django.db import transaction
from django.http import JsonResponse
from django.urls import path
from django.utils import timezone
from rest_framework import generics, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from orders_api.models import Order, OutboxEvent


class BaselineCreateSerializer(serializers.Serializer):
    user_id = serializers.UUIDField()
    payload = serializers.DictField()


class BaselineOrderSerializer(serializers.ModelSerializer):
    class Meta:
        model = Order
        fields = ["order_id", "user_id", "amount", "status", "payload", "created_at", "version"]


class BareView(APIView):
    """No authentication, no permission, JSON only, DRF's exception handler: DRF with
    nothing of the project."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]

    def get_exception_handler(self):
        return exception_handler  # DRF's own


class BaselineOrderCreate(BareView):
    def post(self, request):
        body = BaselineCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        now = timezone.now()
        order_id = uuid.uuid4()
        with transaction.atomic():
            order = Order.objects.create(
                order_id=order_id,
                user_id=body.validated_data["user_id"],
                payload=body.validated_data["payload"],
                created_at=now,
                updated_at=now,
                bucket=order_id.int % 16,
            )
            OutboxEvent.objects.create(
                event_id=uuid.uuid4(),
                order_id=order.order_id,
                version=1,
                topic="bench.baseline",
                value=json.dumps({"order_id": str(order_id), "status": "created"}),
                created_at=now,
                next_attempt_at=now,
                published_at=now,
            )
        return Response({"order_id": str(order_id)}, status=status.HTTP_201_CREATED)


class BaselineOrderRetrieve(BareView, generics.RetrieveAPIView):
    queryset = Order.objects.all()
    serializer_class = BaselineOrderSerializer
    lookup_field = "order_id"


def health(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("health", health),
    path("orders", BaselineOrderCreate.as_view()),
    path("orders/<uuid:order_id>", BaselineOrderRetrieve.as_view()),
]
