"""Local development (`make run`): DEBUG from the environment, a development key."""

from .base import *  # noqa: F403
from .base import SECRET_KEY

SECRET_KEY = SECRET_KEY or "local-development-key-not-for-production"
# WhiteNoise serves app static files straight from their finders: no collectstatic needed.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = None
