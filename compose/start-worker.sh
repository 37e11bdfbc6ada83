#!/usr/bin/env bash
# Start the worker: wait for its database, migrate the `worker` alias, then replace this
# shell with `manage.py run_worker` (SIGTERM stops it cleanly). Several replicas may start
# at once (`--scale worker=3`): prestart.py serialises their migrations with a lock.
# The container runs it as its command; the test suite runs the same file outside Docker.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-orderstream.settings.production}"

python compose/prestart.py worker --timeout "${DB_WAIT_TIMEOUT:-60}"
exec python manage.py run_worker
