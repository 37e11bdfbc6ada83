"""WSGI entry point (gunicorn orderstream.wsgi)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orderstream.settings.production")
django.setup(set_prefix=False)

from orderstream.charset import TextCharsetWSGIHandler  # noqa: E402 (needs the settings)

# Django's WSGIHandler, with requests that refuse a charset which is no text encoding.
application = TextCharsetWSGIHandler()
