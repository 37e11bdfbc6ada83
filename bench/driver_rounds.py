"""The plan of the Kafka drivers' comparison (`make bench --drivers`): which drivers, in
which order, and the topics and groups of each round's processes. Pure: no Django needed.
"""

from __future__ import annotations

from collections.abc import Iterable


def driver_names(text: str, known: Iterable[str]) -> list[str]:
    """The drivers of `--drivers` ("kafka-python,confluent"), in its order, each once and
    each one of `known`; an empty text or "none" names none (no comparison)."""
    known = tuple(known)
    names = [name.strip() for name in text.split(",") if name.strip()]
    if names == ["none"]:
        return []
    for index, name in enumerate(names):
        if name not in known:
            raise ValueError(f"unknown Kafka driver {name} (known: {', '.join(known)})")
        if name in names[:index]:
            raise ValueError(f"Kafka driver {name} named twice")
    return names


def interleaved(drivers: list[str], rounds: int) -> list[tuple[int, str]]:
    """(round, driver) in the order measured: every driver once a round, in the order
    named (round 1 kafka-python, round 1 confluent, round 2 kafka-python, ...), so a slow
    moment of the shared machine falls on both rather than on one driver's figures."""
    return [(number, driver) for number in range(1, rounds + 1) for driver in drivers]


def stack_names(driver: str, round_number: int) -> dict[str, str]:
    """The topics and consumer groups (environment variables of the API, relay and worker)
    of one round's stack: its own, so no group ever holds members of two drivers (a
    cooperative-sticky librdkafka member and an eager kafka-python one cannot share one)
    and no round's worker reads the events of a round before it."""
    tag = f"{driver}.r{round_number}"
    return {
        "ORDERS_EVENTS_TOPIC": f"bench.orders.events.{tag}",
        "ORDERS_ACK_TOPIC": f"bench.orders.ack.{tag}",
        "ORDERS_DLQ_TOPIC": f"bench.orders.events.dlq.{tag}",
        "WORKER_GROUP": f"bench-workers.{tag}",
        "ACK_RECORDER_GROUP": f"bench-ack-recorders.{tag}",
    }
