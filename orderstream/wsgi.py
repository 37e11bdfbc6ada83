"""WSGI entry point: the API's Django (served through orderstream/rsgi.py)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orderstream.settings.production")
django.setup(set_prefix=False)

from orderstream.wsgi_handler import ApiWSGIHandler  # noqa: E402 (needs the settings)

# Django's WSGIHandler, with requests that refuse a charset which is no text encoding and
# the fast path of GET /orders/{order_id}.
application = ApiWSGIHandler()
