"""The API's gunicorn worker class (gunicorn.conf.py's worker_class).

gthread's worker, whose quit (SIGQUIT, SIGINT) runs once however many quit signals come.
Python runs a signal's handler in the main thread, between two bytecodes of what runs
there; gthread's handle_quit shuts its thread pool down, under the pool's lock, so a
second quit signal landing there (a terminal's Ctrl-C reaching the process group, then
the master's SIGQUIT) ran a second shutdown that waited for that lock forever: the worker
hung with its master gone, holding the API's port.
"""

from __future__ import annotations

import threading

from gunicorn.workers.gthread import ThreadWorker


class QuitOnceThreadWorker(ThreadWorker):
    """gthread's worker with an idempotent handle_quit: a quit signal during a quit is
    ignored (the quit under way exits the worker)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A lock, not a flag: acquiring it is one call, which no signal handler can split
        # between a test and a set.
        self._quit_once = threading.Lock()

    def handle_quit(self, sig, frame):
        if not self._quit_once.acquire(blocking=False):
            return
        super().handle_quit(sig, frame)
