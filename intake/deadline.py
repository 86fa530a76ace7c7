"""On time or late: pick when a message arrived and compare it with the deadline (pure).

The deadline is a wall-clock time in the consultation's zone (Europe/London by
default), inclusive: a message received at 23:59:59 on the day is on time. All
instants inside the program are aware UTC; UK time is only for showing.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from .mail.message import ReceivedAt, Timeliness

__all__ = ["UK", "classify", "deadline_instant", "format_uk", "pick_received_at", "sent_in_time"]

UK = ZoneInfo("Europe/London")


def deadline_instant(local: dt.datetime, zone: ZoneInfo, grace_minutes: int = 0) -> dt.datetime:
    """The last instant (UTC) that counts as on time.

    ``local`` is a naive wall-clock time read in ``zone``. In the autumn hour that
    happens twice, the later of the two is taken, in the respondent's favour.
    """
    if local.tzinfo is not None:
        raise ValueError("the deadline must be a local (naive) date-time")
    first = local.replace(tzinfo=zone, fold=0).astimezone(dt.UTC)
    second = local.replace(tzinfo=zone, fold=1).astimezone(dt.UTC)
    return max(first, second) + dt.timedelta(minutes=grace_minutes)


def pick_received_at(
    internal_date: dt.datetime | None,
    received_header: dt.datetime | None,
    date_header: dt.datetime | None,
    fetched_at: dt.datetime,
) -> ReceivedAt:
    """Choose the best evidence of arrival, in order of trust, and say which it was."""
    for value, source in (
        (internal_date, "internaldate"),
        (received_header, "received_header"),
        (date_header, "date_header"),
    ):
        if value is not None:
            return ReceivedAt(_utc(value), source)
    return ReceivedAt(_utc(fetched_at), "fetched_at")


def classify(received_at: dt.datetime, deadline: dt.datetime) -> Timeliness:
    """``on_time`` iff ``received_at <= deadline`` (both aware; grace already added)."""
    return Timeliness.ON_TIME if _utc(received_at) <= _utc(deadline) else Timeliness.LATE


def sent_in_time(
    timeliness: Timeliness, sent_at: dt.datetime | None, deadline: dt.datetime
) -> bool:
    """True for a late message whose own Date header is by the deadline: staff judge these."""
    return timeliness is Timeliness.LATE and sent_at is not None and _utc(sent_at) <= _utc(deadline)


def format_uk(instant: dt.datetime | None, zone: ZoneInfo = UK) -> str:
    """Show an instant in UK time with its zone, e.g. ``Fri 27 Jul 2018 23:59:59 BST``."""
    if instant is None:
        return "-"
    return _utc(instant).astimezone(zone).strftime("%a %d %b %Y %H:%M:%S %Z")


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: times inside the program are aware")
    return value.astimezone(dt.UTC)
