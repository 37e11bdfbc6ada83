"""Prepare one database alias before its process starts (used by the start scripts).

    python compose/prestart.py default    # the API's database
    python compose/prestart.py worker     # the worker's database

Waits until the alias's database accepts connections (bounded by --timeout), then runs
`migrate --database <alias> --noinput` while holding a PostgreSQL advisory lock, so that
replicas started together (`--scale worker=3`) migrate one after the other.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
                raise SystemExit(
                    f"prestart: database `{alias}` not reachable after {timeout:.0f}s: "
                    f"{str(exc).strip()}"
                ) from None
            print(f"prestart: waiting for database `{alias}` (attempt {attempt})", flush=True)
            time.sleep(1)
        else:
            print(f"prestart: database `{alias}` is up", flush=True)
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
        call_command("migrate", database=alias, interactive=False, verbosity=1)
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
