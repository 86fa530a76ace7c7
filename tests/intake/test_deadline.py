"""On time or late, at the boundary, in summer and winter time, with grace."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from intake.app import App
from intake.config import ConsultationSettings, DatabaseSettings, Settings
from intake.deadline import (
    UK,
    classify,
    deadline_instant,
    format_uk,
    pick_received_at,
    sent_in_time,
)
from intake.mail.message import Timeliness

UTC = dt.UTC
SECOND = dt.timedelta(seconds=1)


class TestDeadlineInstant:
    def test_bst(self) -> None:
        """23:59:59 on 27 July 2018 in London is 22:59:59 UTC (BST)."""
        assert deadline_instant(dt.datetime(2018, 7, 27, 23, 59, 59), UK) == dt.datetime(
            2018, 7, 27, 22, 59, 59, tzinfo=UTC
        )

    def test_gmt(self) -> None:
        """In winter, London time is UTC."""
        assert deadline_instant(dt.datetime(2018, 1, 26, 23, 59, 59), UK) == dt.datetime(
            2018, 1, 26, 23, 59, 59, tzinfo=UTC
        )

    def test_grace(self) -> None:
        """Grace minutes extend the instant."""
        assert deadline_instant(dt.datetime(2018, 7, 27, 23, 59, 59), UK, 15) == dt.datetime(
            2018, 7, 27, 23, 14, 59, tzinfo=UTC
        )

    def test_ambiguous_hour_takes_the_later(self) -> None:
        """01:30 on the last Sunday of October happens twice; the later one counts."""
        assert deadline_instant(dt.datetime(2018, 10, 28, 1, 30), UK) == dt.datetime(
            2018, 10, 28, 1, 30, tzinfo=UTC
        )

    def test_other_zone(self) -> None:
        """A deadline can be set in another zone."""
        assert deadline_instant(
            dt.datetime(2018, 7, 27, 17, 0), ZoneInfo("America/New_York")
        ) == dt.datetime(2018, 7, 27, 21, 0, tzinfo=UTC)

    def test_rejects_aware(self) -> None:
        """A deadline with a zone attached is a programming error."""
        with pytest.raises(ValueError):
            deadline_instant(dt.datetime(2018, 7, 27, tzinfo=UTC), UK)

    def test_settings_and_app_use_this_instant(self, tmp_path: Path) -> None:
        """The settings' cutoff and the App's are this function's answer: the autumn
        hour's later time, grace included (not a second definition that drops either)."""
        consultation = ConsultationSettings(
            name="Test", deadline=dt.datetime(2018, 10, 28, 1, 30), grace_minutes=15
        )
        expected = dt.datetime(2018, 10, 28, 1, 45, tzinfo=UTC)
        assert deadline_instant(consultation.deadline, UK, 15) == expected
        assert consultation.cutoff == expected
        settings = Settings(
            consultation=consultation,
            database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'intake.db'}"),
        )
        assert App(settings).cutoff == expected


@pytest.mark.parametrize(
    ("local_deadline", "grace"),
    [
        (dt.datetime(2018, 7, 27, 23, 59, 59), 0),  # BST
        (dt.datetime(2018, 12, 14, 17, 0, 0), 0),  # GMT
        (dt.datetime(2018, 7, 27, 23, 59, 59), 30),
        (dt.datetime(2018, 3, 25, 0, 59, 59), 0),  # the last second before clocks go forward
        (dt.datetime(2018, 10, 28, 2, 0, 0), 0),  # just after clocks go back
    ],
)
@pytest.mark.parametrize("offset_s", [-3600, -1, 0, 1, 3600])
def test_classify_around_the_boundary(
    local_deadline: dt.datetime, grace: int, offset_s: int
) -> None:
    """On time up to and including the deadline's second, late one second after."""
    cutoff = deadline_instant(local_deadline, UK, grace)
    expected_utc = local_deadline.replace(tzinfo=UK).astimezone(UTC) + dt.timedelta(minutes=grace)
    assert cutoff == expected_utc
    received = cutoff + dt.timedelta(seconds=offset_s)
    expected = Timeliness.ON_TIME if offset_s <= 0 else Timeliness.LATE
    assert classify(received, cutoff) is expected
    # The same instant expressed in another zone classifies the same way.
    assert classify(received.astimezone(ZoneInfo("Asia/Tokyo")), cutoff) is expected


class TestPickReceivedAt:
    A = dt.datetime(2018, 7, 27, 22, 0, tzinfo=UTC)
    B = dt.datetime(2018, 7, 27, 21, 0, tzinfo=UTC)
    C = dt.datetime(2018, 7, 26, 9, 0, tzinfo=UTC)
    D = dt.datetime(2018, 7, 28, 9, 0, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("present", "source"),
        [
            ((True, True, True), "internaldate"),
            ((False, True, True), "received_header"),
            ((False, False, True), "date_header"),
            ((False, False, False), "fetched_at"),
        ],
    )
    def test_order_of_trust(self, present: tuple[bool, bool, bool], source: str) -> None:
        """INTERNALDATE, then the top Received header, then Date, then fetch time."""
        values = [v if p else None for v, p in zip((self.A, self.B, self.C), present, strict=True)]
        picked = pick_received_at(values[0], values[1], values[2], self.D)
        assert picked.source == source
        assert (
            picked.at
            == {
                "internaldate": self.A,
                "received_header": self.B,
                "date_header": self.C,
                "fetched_at": self.D,
            }[source]
        )


def test_sent_in_time() -> None:
    """Only a late message whose Date is by the deadline is flagged for staff."""
    cutoff = dt.datetime(2018, 7, 27, 22, 59, 59, tzinfo=UTC)
    assert sent_in_time(Timeliness.LATE, cutoff, cutoff)
    assert not sent_in_time(Timeliness.LATE, cutoff + SECOND, cutoff)
    assert not sent_in_time(Timeliness.ON_TIME, cutoff, cutoff)
    assert not sent_in_time(Timeliness.LATE, None, cutoff)


def test_format_uk() -> None:
    """Times are shown in UK time with the zone named."""
    assert (
        format_uk(dt.datetime(2018, 7, 27, 22, 59, 59, tzinfo=UTC))
        == "Fri 27 Jul 2018 23:59:59 BST"
    )
    assert format_uk(dt.datetime(2018, 12, 1, 9, 0, tzinfo=UTC)) == "Sat 01 Dec 2018 09:00:00 GMT"
    assert format_uk(None) == "-"
