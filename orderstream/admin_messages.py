"""Django's messages framework, for the admin's pages only.

`MessageMiddleware` builds a message store (a cookie and a session backend, each with its
signer) for every request; the API never shows a message, and in a profile of the create
that set-up was about a tenth of the request's CPU. Outside the admin this middleware does
nothing: `django.contrib.messages.add_message` there raises MessageFailure (no view of the
API calls it).
"""

from __future__ import annotations

from django.contrib.messages.middleware import MessageMiddleware
from django.urls import NoReverseMatch, reverse

# No URL starts with this: the URLconf has no admin (the benchmark's baseline).
_NO_ADMIN = "\0"


class AdminMessageMiddleware(MessageMiddleware):
    """`MessageMiddleware` for requests under the admin's URL."""

    _admin_prefix: str | None = None

    def process_request(self, request):
        if request.path.startswith(self._admin_path()):
            super().process_request(request)

    @classmethod
    def _admin_path(cls) -> str:
        if cls._admin_prefix is None:
            try:
                cls._admin_prefix = reverse("admin:index")
            except NoReverseMatch:
                cls._admin_prefix = _NO_ADMIN
        return cls._admin_prefix
