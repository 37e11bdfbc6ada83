"""Prepare one database alias before its process starts (used by the start scripts).

    python compose/prestart.py default    # the API's database
    python compose/prestart.py worker     # the worker's database

Waits until the alias's database accepts connections (bounded by --timeout), then runs
`migrate --database <alias> --noinput` while holding a PostgreSQL advisory lock, so that
replicas started together (`--scale worker=3`) migrate one after the other.

Everything it says goes through the project's logging (so LOG_FORMAT=json makes the
container's whole output JSON lines), migrate's own output included.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
logger = logging.getLogger("prestart")


class LoggedLines(io.TextIOBase):
    """A text stream that logs each complete line it is given (migrate's output)."""

    def __init__(self):
        self._partial = ""

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            if line.strip():
                logger.info("%s", line.rstrip())
        return len(text)


def wait_for_database(alias: str, timeout: float) -> None:
    """Return once `alias` answers; raise SystemExit with the last error after `timeout`."""
    from django.db import OperationalError, connections

    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        try:
            connections[alias].ensure_connection()
        except OperationalError as exc:
            connections[alias].close()
            if time.monotonic() >= deadline:
                logger.error(
                    "database `%s` not reachable after %.0fs: %s", alias, timeout, str(exc).strip()
                )
                raise SystemExit(1) from None
            logger.info("waiting for database `%s` (attempt %d)", alias, attempt)
            time.sleep(1)
        else:
            logger.info("database `%s` is up", alias)
            return


def migrate_locked(alias: str) -> None:
    """Migrate `alias` under a session-level advisory lock on that same connection."""
    from django.core.management import call_command
    from django.db import connections

    key = zlib.crc32(f"orderstream:migrate:{alias}".encode())
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])
    try:
        output = LoggedLines()
        call_command("migrate", database=alias, interactive=False, verbosity=1, stdout=output)
        output.write("\n")  # a last line without its newline
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("alias", choices=["default", "worker"])
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the db")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orderstream.settings.production")
    import django

    django.setup()
    wait_for_database(args.alias, args.timeout)
    migrate_locked(args.alias)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
