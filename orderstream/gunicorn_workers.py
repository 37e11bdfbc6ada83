"""The API's gunicorn worker class (gunicorn.conf.py's worker_class).

gthread's worker, with a quit (SIGQUIT, SIGINT) that cannot hang. Python runs a signal's
handler in the main thread, between two bytecodes of what runs there. gthread's
handle_quit first shuts its thread pool down, which takes the pool's lock; that lock is
not reentrant, and the interrupted code may hold it (ThreadPoolExecutor.submit holds it
while it starts a thread for an accepted request), as may a first quit interrupted by a
second quit signal (a terminal's Ctrl-C reaching the process group, then the master's
SIGQUIT). Either way the worker waited for itself forever, its master gone, holding the
API's port (py-spy: handle_quit -> shutdown, twice, above submit).
"""

from __future__ import annotations

import threading

from gunicorn.workers.base import Worker
from gunicorn.workers.gthread import ThreadWorker


class QuitOnceThreadWorker(ThreadWorker):
    """gthread's worker whose quit runs once, and exits without shutting the pool down
    first: the exit itself wakes the pool's idle threads and waits for the busy ones
    (concurrent.futures' exit hook), as after gthread's shutdown(wait=False)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A lock, not a flag: acquiring it is one call, which no signal handler can split
        # between a test and a set.
        self._quit_once = threading.Lock()

    def handle_quit(self, sig, frame):
        if not self._quit_once.acquire(blocking=False):
            return  # a quit is under way (this signal interrupted it): it exits the worker
        Worker.handle_quit(self, sig, frame)  # worker_int, then sys.exit(0)
