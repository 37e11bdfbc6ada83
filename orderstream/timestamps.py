"""Timestamps of the contract: RFC 3339 in UTC, read strictly.

Events carry their `timestamp`, ACKs `processed_at`, results `created_at`/`updated_at`:
all written by `rfc3339` (UTC, `Z`) and read by `parse_rfc3339`/`event_time`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

# Event timestamps outside these UTC years are refused: a datetime near year 1 or 9999
# overflows when moved between time zones (PostgreSQL stores it, Python cannot read it back).
EVENT_YEARS = range(1970, 9999)


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """Render an aware datetime as RFC 3339 in UTC with a `Z` suffix."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# RFC 3339's date-time (section 5.6): `T` and `Z` in either case, a time offset required.
# datetime.fromisoformat alone reads more of ISO 8601 (basic format, no seconds).
RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 date-time as an aware datetime; ValueError for anything else."""
    if not RFC3339.fullmatch(text):
        raise ValueError("not an RFC 3339 date-time with a time offset")
    return datetime.fromisoformat(text.upper())  # Python 3.11+ reads the Z


def event_time(text: str) -> datetime:
    """An event's `timestamp` as an aware UTC datetime within `EVENT_YEARS`.

    Raises `ValueError` for anything else.
    """
    try:
        moment = parse_rfc3339(text).astimezone(UTC)
    except OverflowError:
        raise ValueError("date out of range") from None
    if moment.year not in EVENT_YEARS:
        raise ValueError(
            f"year {moment.year} is outside {EVENT_YEARS.start}..{EVENT_YEARS.stop - 1}"
        )
    return moment
