"""The embedded broker of a kind: `tansu` (in memory, no Java) or `kafka` (Apache Kafka)."""

from __future__ import annotations

from pathlib import Path

KINDS = ("tansu", "kafka")


def embedded_broker(kind: str, *, port: int | None, data_dir: Path, log_path: Path | None):
    """An unstarted broker of `kind`; `data_dir` keeps Apache Kafka's log (Tansu has none)."""
    if kind == "tansu":
        from .tansu import TansuBroker

        return TansuBroker(port=port, log_path=str(log_path) if log_path else None)
    if kind == "kafka":
        from .apache_kafka import ApacheKafkaBroker

        return ApacheKafkaBroker(
            port=port, data_dir=data_dir, log_path=str(log_path) if log_path else None
        )
    raise ValueError(f"BROKER={kind!r}: choose one of {', '.join(KINDS)}")
