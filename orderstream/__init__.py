"""OrderStream: an event-driven order service (Django API + Kafka worker)."""
