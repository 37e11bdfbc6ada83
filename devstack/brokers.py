"""The embedded broker of a kind: `tansu` (in memory, no Java) or `kafka` (Apache Kafka),
one node or (`kafka` only) a cluster of KAFKA_NODES nodes."""

from __future__ import annotations

import os
from pathlib import Path

KINDS = ("tansu", "kafka")
# One node, or three: the smallest quorum that survives the loss of one node (two nodes
# would stop with either one down).
NODE_COUNTS = (1, 3)


def kafka_nodes() -> int:
    """KAFKA_NODES (default 1): how many Apache Kafka nodes the local stack starts."""
    raw = os.environ.get("KAFKA_NODES", "").strip() or "1"
    if not raw.isdigit() or int(raw) not in NODE_COUNTS:
        raise ValueError(f"KAFKA_NODES={raw!r}: choose 1 or 3")
    return int(raw)


def embedded_broker(
    kind: str, *, port: int | None, data_dir: Path, log_path: Path | None, nodes: int = 1
):
    """An unstarted broker of `kind`; `data_dir` keeps Apache Kafka's log (Tansu has none);
    `nodes` > 1: an Apache Kafka cluster of that many nodes."""
    if kind == "tansu":
        if nodes != 1:
            raise ValueError(f"KAFKA_NODES={nodes} needs BROKER=kafka (Tansu runs one node)")
        from .tansu import TansuBroker

        return TansuBroker(port=port, log_path=str(log_path) if log_path else None)
    if kind == "kafka":
        if nodes != 1:
            from .kafka_cluster import ApacheKafkaCluster

            return ApacheKafkaCluster(nodes, port, data_dir=data_dir, log_path=log_path)
        from .apache_kafka import ApacheKafkaBroker

        return ApacheKafkaBroker(
            port=port, data_dir=data_dir, log_path=str(log_path) if log_path else None
        )
    raise ValueError(f"BROKER={kind!r}: choose one of {', '.join(KINDS)}")
