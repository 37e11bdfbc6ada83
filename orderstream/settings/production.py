"""Production: refuses to start without a real secret key; secure cookies and headers."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import SECRET_KEY, env_bool

# The placeholder of .env.example is public: refuse it like a missing key.
if not SECRET_KEY or len(SECRET_KEY) < 32 or SECRET_KEY.startswith("change-me"):
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set to a random value of 32+ characters.")

SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# orders_api.apps warns at start while API_TOKENS is empty (the API is open to anyone).
WARN_WHEN_API_OPEN = True
