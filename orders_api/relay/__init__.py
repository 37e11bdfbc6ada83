"""The outbox relay (`manage.py run_relay`): its loop (`loop.py`), one pass (`publish.py`), its
database session settings, notifications, metrics and purges."""
