"""The Kafka driver a test session runs with (KAFKA_CLIENT: one driver per session)."""

from __future__ import annotations

import pytest
from django.conf import settings


def kafka_python_only(why: str):
    """A mark that skips a test unless the session's driver is kafka-python: `why` says
    what of kafka-python's the test takes apart (its internals, its fixes)."""
    return pytest.mark.skipif(
        settings.KAFKA_CLIENT != "kafka-python", reason=f"kafka-python only: {why}"
    )
