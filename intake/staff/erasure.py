"""Purge and erasure: retention by date, and one person's erasure request (UK GDPR Art. 17).

Both run every eraser registered in :mod:`store.erasure` over the chosen
submissions in one transaction, cancel acknowledgements not yet sent, and leave an
audit record that holds counts only (never an address, a name or a reference).
Then the database is *settled*, so the erased data leaves its files.

:func:`retention_forecast` says when ``[retention] purge_after_days`` next runs and
how much it will remove, for ``intake status`` and the digest.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from store import erasure, repo, selection

from ..config import RetentionSettings
from ..deadline import format_uk

__all__ = [
    "ErasurePlan",
    "ErasureReport",
    "RetentionForecast",
    "erase",
    "next_purge_run",
    "plan_purge",
    "plan_sender",
    "retention_forecast",
]

log = logging.getLogger(__name__)

# The worker applies [retention] purge_after_days at this hour (UK time) every day,
# and once when it starts.
PURGE_HOUR = 3


@dataclass(frozen=True)
class ErasurePlan:
    """The submissions an erasure would change, chosen but not yet touched."""

    ids: list[int]
    references: list[str]
    anonymise: bool
    what: str  # for the audit record: how they were chosen, with no personal data
    mentioned_in: list[str] = field(default_factory=list)  # other references naming them


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure changed: rows per table, and whether the files are settled."""

    submissions: int
    tables: dict[str, int] = field(default_factory=dict)
    settled: bool = True

    def summary(self) -> str:
        """Counts only, safe for the audit log."""
        rows = ", ".join(f"{table} {n}" for table, n in self.tables.items())
        return f"{self.submissions} submission(s); rows changed: {rows or 'none'}"


def _references(session: Session, ids: list[int]) -> list[str]:
    return selection.references_of(session, ids)


def plan_purge(session: Session, before: dt.datetime, *, anonymise: bool) -> ErasurePlan:
    """Every submission dated before ``before`` with data left: read, failed or never read."""
    ids = erasure.ids_before(session, before, anonymise=anonymise)
    what = f"dated before {format_uk(before)}" + (", anonymised" if anonymise else "")
    return ErasurePlan(ids, _references(session, ids), anonymise, what)


def plan_sender(session: Session, address: str, references: tuple[str, ...] = ()) -> ErasurePlan:
    """One person's data: their submissions, acknowledgements to them, bounces of those.

    Always anonymising. ``references`` adds submissions found by staff (a response
    forwarded by someone else, say).
    """
    ids = set(erasure.ids_for_address(session, address))
    ids.update(repo.get_by_reference(session, ref).id for ref in references)
    ordered = sorted(ids)
    mentions = erasure.ids_mentioning(session, address, ordered)
    return ErasurePlan(
        ordered,
        _references(session, ordered),
        True,
        "for an erasure request (UK GDPR Art. 17)",
        _references(session, mentions),
    )


def erase(
    sessions: sessionmaker[Session],
    engine: Engine,
    plan: ErasurePlan,
    now: dt.datetime,
    *,
    action: str,
) -> ErasureReport:
    """Erase what ``plan`` chose, audit it with counts only, commit, then settle the files."""
    with sessions() as session:
        tables = erasure.erase_submissions(session, plan.ids, anonymise=plan.anonymise)
        report = ErasureReport(len(plan.ids), tables)
        repo.audit(session, action, None, f"{plan.what}: {report.summary()}", now)
        session.commit()
    settled = erasure.settle(engine)
    if not settled:
        log.warning("erased, but the database was busy: old copies may stay in its log for now")
    return ErasureReport(report.submissions, report.tables, settled)


def next_purge_run(now: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """The next scheduled retention purge after ``now``: PURGE_HOUR o'clock, local time."""
    local = now.astimezone(zone)
    run = dt.datetime.combine(local.date(), dt.time(PURGE_HOUR), tzinfo=zone)
    if run <= local:
        run = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(PURGE_HOUR), zone)
    return run.astimezone(dt.UTC)


@dataclass(frozen=True)
class RetentionForecast:
    """When the retention purge next runs and what it will remove."""

    days: int  # [retention] purge_after_days; 0: off
    anonymise: bool
    next_run: dt.datetime | None = None
    cutoff: dt.datetime | None = None
    due: int = 0  # submissions it will erase

    def words(self) -> str:
        """What the next purge will do, in one sentence (UK time)."""
        if self.days <= 0 or self.next_run is None or self.cutoff is None:
            return (
                "no automatic purge ([retention] purge_after_days = 0); "
                "run `intake purge --before DATE` when the data is no longer needed"
            )
        depth = (
            "mail, files, texts, names and addresses" if self.anonymise else "mail, files and texts"
        )
        return (
            f"next purge {format_uk(self.next_run)} will erase the {depth} of "
            f"{self.due} submission(s) dated before {format_uk(self.cutoff)} "
            f"(purge_after_days = {self.days})"
        )

    def line(self) -> str:
        return f"Retention: {self.words()}"


def retention_forecast(
    session: Session, retention: RetentionSettings, zone: dt.tzinfo, now: dt.datetime
) -> RetentionForecast:
    """What ``[retention] purge_after_days`` will do at its next run."""
    if retention.purge_after_days <= 0:
        return RetentionForecast(0, retention.anonymise)
    run = next_purge_run(now, zone)
    cutoff = run - dt.timedelta(days=retention.purge_after_days)
    due = len(erasure.ids_before(session, cutoff, anonymise=retention.anonymise))
    return RetentionForecast(retention.purge_after_days, retention.anonymise, run, cutoff, due)
