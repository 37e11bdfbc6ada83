"""Support shared by the test folders: processes, brokers, ledgers, waiting. Never imported by
the apps, left out of the image (.dockerignore)."""
