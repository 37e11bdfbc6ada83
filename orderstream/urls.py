"""URL configuration: the API, its schema and docs (Swagger UI, ReDoc), and the admin.

Errors outside DRF views (unknown URLs, oversized bodies) answer in the API's JSON error
shape through the handlers below.
"""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

# drf-spectacular's ReDoc page without its Google Fonts links: nothing from another host.
redoc = SpectacularRedocView.as_view(url_name="schema", template_name="orders_api/redoc.html")

admin.site.site_header = "OrderStream administration"
admin.site.site_title = "OrderStream admin"
admin.site.index_title = "Orders, outbox, processed orders and dead letters"

urlpatterns = [
    path("", include("orders_api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema")),
    path("redoc", redoc, name="redoc"),
    path("redoc/", redoc),
    path("admin/", admin.site.urls),
]

handler400 = "orders_api.exceptions.bad_request"
handler403 = "orders_api.exceptions.permission_denied"
handler404 = "orders_api.exceptions.not_found"
handler500 = "orders_api.exceptions.server_error"
