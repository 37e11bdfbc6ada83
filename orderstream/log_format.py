"""The format of every log line: `text` for people (the default), `json` for log shippers.

LOG_FORMAT=json makes the API (Django and granian), the relay and the worker write one
JSON object per line: `time` (UTC, RFC 3339 with milliseconds), `level`, `logger`, `pid`,
`message`, `exc_info` when there is a traceback, and the fields a call passes with
`extra=log_fields(...)`: `order_id`, `event_id`, `topic`, `partition` and `offset` where
the line concerns one order, event or Kafka record. So one order can be followed across
the three processes by its `order_id` (README, "Logs").

The JSON is written by python-json-logger; this module only fixes the field names, the
time format and the UTF-8 output, so every process writes the same shape.
"""

from __future__ import annotations

import logging
import logging.config
from datetime import UTC, datetime

from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"
# LogRecord attribute -> its key in the JSON object (in this order).
JSON_FIELDS = {
    "asctime": "time",
    "levelname": "level",
    "name": "logger",
    "process": "pid",
    "message": "message",
}


def log_format_from(value: str | None) -> str:
    """The LOG_FORMAT in force: `text` when unset or empty; ValueError for an unknown one."""
    chosen = (value or "text").strip().lower()
    if chosen not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {value!r}")
    return chosen


def logger_levels_from(value: str | None) -> dict[str, str]:
    """LOG_LEVELS (`logger=LEVEL,...`, e.g. `kafka.coordinator=DEBUG`) as {logger: LEVEL};
    ValueError naming the item for anything else."""
    levels = {}
    for item in filter(None, (part.strip() for part in (value or "").split(","))):
        name, _, level = (part.strip() for part in item.partition("="))
        if not name or not isinstance(logging.getLevelName(level.upper()), int):
            raise ValueError(f"LOG_LEVELS items are logger=LEVEL (e.g. kafka=DEBUG), not {item!r}")
        levels[name] = level.upper()
    return levels


class JsonFormatter(_LibraryJsonFormatter):
    """One JSON object per record: the JSON_FIELDS, then the record's `extra` fields."""

    def __init__(self, *args, **kwargs):
        super().__init__(
            list(JSON_FIELDS),
            rename_fields={key: name for key, name in JSON_FIELDS.items() if key != name},
            json_ensure_ascii=False,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def log_fields(*, order_id=None, event_id=None, record=None) -> dict:
    """The `extra=` of a log line about one order, event or Kafka `record` (its topic,
    partition and offset); ids as text (a UUID or a str alike), unknown values left out."""
    fields = {
        name: str(value)
        for name, value in (("order_id", order_id), ("event_id", event_id))
        if value is not None
    }
    if record is not None:
        fields.update(topic=record.topic, partition=record.partition, offset=record.offset)
    return fields


def logging_configure(config: dict) -> None:
    """Django's LOGGING_CONFIG: `config` applied, and Python's warnings (a library's
    UserWarning, a DeprecationWarning) logged through it as `py.warnings` rather than
    printed raw to stderr, so they take the format too."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)


def logging_dict(log_format: str, level: str = "INFO", levels: dict | None = None) -> dict:
    """The logging configuration of every process (Django's LOGGING, granian's
    `log_dictconfig`): everything to stdout through the root logger, in `log_format`, at
    `level`, with `levels` for single loggers. granian's own lines (logger `_granian`) and
    its access log (`granian.access`) go the same way."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "text": {"format": TEXT_FORMAT},
            "json": {"()": "orderstream.log_format.JsonFormatter"},
        },
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": log_format,
            },
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            "_granian": {"handlers": [], "propagate": True},
            "granian.access": {"handlers": [], "propagate": True, "level": "INFO"},
            **{name: {"level": value} for name, value in (levels or {}).items()},
        },
    }
