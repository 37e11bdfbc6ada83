"""The benchmark's bare-DRF baseline (`bench/baseline.py`): the local settings
with only its URLconf, served by a server of its own (the API's: orderstream/api_server.py)
that the benchmark starts and stops. Never the settings of the real API."""

from orderstream.settings.local import *  # noqa: F403

ROOT_URLCONF = "bench.baseline"
# The baseline is bare DRF: no fast path of the API's (orders_api/fast_reads.py) answers it.
API_FAST_READS = False
# Nor does it wait for ACKs: its server processes start no ACK listener.
API_PROCESS_LISTENER = None
