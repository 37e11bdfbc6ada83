"""The benchmark's bare-DRF baseline (`bench/baseline.py`): the local settings
with only its URLconf, served by a gunicorn of its own that the benchmark starts and
stops. Never the settings of the real API."""

from orderstream.settings.local import *  # noqa: F403

ROOT_URLCONF = "bench.baseline"
