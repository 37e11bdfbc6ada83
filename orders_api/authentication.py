"""Optional API authentication: bearer tokens from API_TOKENS, or a staff login.

Off while API_TOKENS is empty, so clients of the original service work unchanged (the
production settings log a warning at start then). With tokens set, every API request
needs `Authorization: Bearer <one of them>` (compared in constant time) or the session of
a logged-in staff user (the browsable API); /health, /ready, /metrics, the schema and the
docs stay open.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import AllowAny, BasePermission


class TokenClient:
    """The caller a valid bearer token stands for (no user account behind it)."""

    is_authenticated = True
    is_staff = False


def token_known(token: bytes) -> bool:
    """Whether `token` is one of API_TOKENS: every one is compared (no early exit), each
    in constant time."""
    matches = [hmac.compare_digest(token, known.encode()) for known in settings.API_TOKENS]
    return any(matches)


class BearerTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>` against API_TOKENS; while it is empty (auth off), a
    bearer header is ignored, as if none were sent: no token can be wrong then."""

    def authenticate(self, request):
        if not settings.API_TOKENS:
            return None
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("expected `Bearer <token>`")
        token = parts[1]
        if not token_known(token):
            raise exceptions.AuthenticationFailed("unknown token")
        return TokenClient(), token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="orderstream"'


class ApiAccess(BasePermission):
    """Anyone while API_TOKENS is empty; else a token holder or a logged-in staff user."""

    message = "send `Authorization: Bearer <token>` (see API_TOKENS)"

    def has_permission(self, request, view) -> bool:
        if not settings.API_TOKENS:
            return True
        user = request.user
        return request.auth is not None or bool(user and user.is_authenticated and user.is_staff)


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """The bearer tokens in the OpenAPI schema; optional (`{}`) while API_TOKENS is empty,
    as ApiAccess lets every caller in then."""

    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "One of API_TOKENS."}

    def get_security_requirement(self, auto_schema):
        requirement = {self.name: []}
        open_view = any(isinstance(p, AllowAny) for p in auto_schema.view.get_permissions())
        if settings.API_TOKENS or open_view:  # AllowAny views get {} from drf-spectacular
            return requirement
        return [requirement, {}]
