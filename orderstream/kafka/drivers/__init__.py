"""The Kafka client drivers behind the ports (`orderstream/kafka/ports.py`): `kafka_python`
(the default, its client and fixes in `orderstream/kafka/driver.py`) and `confluent`
(confluent-kafka, librdkafka). `clients.py` picks one from KAFKA_CLIENT."""
