"""gunicorn settings of the benchmark's bare-DRF baseline (`-c python:` this module).

The API's own gunicorn.conf.py values (workers, threads, worker class, timeouts), without
its hooks: the baseline has no ACK listener. The bind comes from the command line.
"""

import runpy
from pathlib import Path

_api = runpy.run_path(str(Path(__file__).resolve().parents[1] / "gunicorn.conf.py"))

workers = _api["workers"]
worker_class = _api["worker_class"]
threads = _api["threads"]
timeout = _api["timeout"]
graceful_timeout = _api["graceful_timeout"]
accesslog = _api["accesslog"]
