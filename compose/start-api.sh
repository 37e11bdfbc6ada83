#!/usr/bin/env bash
# Start the API: wait for its database, migrate the `default` alias, then replace this
# shell with the API's server, granian (so SIGTERM from `docker compose stop` reaches it
# directly).
# The container runs it as its command; the test suite runs the same file outside Docker.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-orderstream.settings.production}"

python compose/prestart.py default --timeout "${DB_WAIT_TIMEOUT:-60}"
exec python -m orderstream.api_server
