#!/usr/bin/env bash
# Start the outbox relay: wait for the API's database and its migrations (prestart.py
# serialises them with the API's), then replace this shell with `manage.py run_relay`
# (SIGTERM stops it cleanly). Several replicas may run (`--scale relay=2`).
# The container runs it as its command; the test suite runs the same file outside Docker.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-orderstream.settings.production}"

python compose/prestart.py default --timeout "${DB_WAIT_TIMEOUT:-60}"
exec python manage.py run_relay
