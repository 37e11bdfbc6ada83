"""Django's messages framework, for the admin's pages only.

`MessageMiddleware` builds a message store (a cookie and a session backend, each with its
signer) for every request; the API never shows a message, and in a profile of the create
that set-up was about a tenth of the request's CPU. Outside the admin this middleware does
nothing: `django.contrib.messages.add_message` there raises MessageFailure (no view of the
API calls it).
"""

from __future__ import annotations

from functools import cached_property

from django.contrib.messages.middleware import MessageMiddleware
from django.urls import NoReverseMatch, reverse


class AdminMessageMiddleware(MessageMiddleware):
    """`MessageMiddleware` for requests under the admin's URL."""

    def process_request(self, request):
        prefix = self._admin_prefix
        if prefix is not None and request.path.startswith(prefix):
            super().process_request(request)

    @cached_property
    def _admin_prefix(self) -> str | None:
        """The admin's URL; None when the URLconf has none (the benchmark's baseline)."""
        try:
            return reverse("admin:index")
        except NoReverseMatch:
            return None
