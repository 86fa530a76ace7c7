"""No silent gaps: a UID the server leaves out of a FETCH reply is asked for alone, and
recorded (seen by staff, retried) when it still does not come; the watermark never
passes it unrecorded. Real Dovecot; the reply is thinned the way a faulty server would.
"""

from __future__ import annotations

import re

from intake.app import App
from intake.mail.imap import ImapInbox
from intake.staff.health import gather_health
from intake.worker import poll_imap
from store import repo, work
from tests.intake.test_poll import AUG, compose, submissions
from tests.support import Dovecot


class _LeavesOut(ImapInbox):
    """Drops one UID's message from FETCH replies (only from multi-UID ones, or always)."""

    dropped_uid = 0
    only_in_groups = True

    def _command(self, *args: str) -> list[object]:
        data = super()._command(*args)
        if args[0] != "FETCH" or "BODY.PEEK" not in args[-1]:
            return data
        if self.only_in_groups and ("," not in args[1] and ":" not in args[1]):
            return data
        pattern = re.compile(rb"UID %d\b" % self.dropped_uid)
        return [item for item in data if not (isinstance(item, tuple) and pattern.search(item[0]))]


def _inbox(app: App, uid: int, *, always: bool) -> _LeavesOut:
    assert app.settings.imap is not None
    inbox = _LeavesOut(app.settings.imap, max_message_bytes=10**8, now=app.now)
    inbox.dropped_uid, inbox.only_in_groups = uid, not always
    return inbox


def test_uid_left_out_of_a_batch_is_fetched_alone(imap_app: App, dovecot: Dovecot) -> None:
    """A UID missing from a multi-message reply is fetched on its own: nothing is lost."""
    uids = [dovecot.append(compose(n), AUG) for n in range(4)]
    with imap_app.pipeline() as pipeline:
        report = poll_imap(pipeline, _inbox(imap_app, uids[1], always=False))
    assert report.stored == 4
    with imap_app.sessions() as session:
        assert work.unfetched(session) == []


def test_uid_never_returned_is_recorded_shown_and_retried(imap_app: App, dovecot: Dovecot) -> None:
    """A UID the server never returns is recorded before later ones are stored, shown by
    `intake status`, and fetched by the next poll once the server gives it."""
    uids = [dovecot.append(compose(n), AUG) for n in range(4)]
    with imap_app.pipeline() as pipeline:
        report = poll_imap(pipeline, _inbox(imap_app, uids[1], always=True))
    assert report.stored == 3
    with imap_app.sessions() as session:
        (gap,) = work.unfetched(session)
        assert gap.uid == uids[1] and gap.attempts == 1
        # The watermark is past it, but the gap is on record.
        assert repo.uid_watermark(session, gap.mailbox, gap.uidvalidity) == uids[3]
        lines = gather_health(session, imap_app.settings, imap_app.now()).lines()
    assert any(f"UID {uids[1]} in" in line and "never returned" in line for line in lines)
    with imap_app.pipeline() as pipeline:  # still withheld: counted again
        assert poll_imap(pipeline, _inbox(imap_app, uids[1], always=True)).stored == 0
    with imap_app.sessions() as session:
        assert [g.attempts for g in work.unfetched(session)] == [2]
    with imap_app.pipeline() as pipeline:  # the server behaves: it is stored, gap closed
        report = poll_imap(pipeline, _inbox(imap_app, 0, always=True))
        pipeline.read_pending()
    assert report.stored == 1
    with imap_app.sessions() as session:
        assert work.unfetched(session) == []
    assert sorted(s.message_id for s in submissions(imap_app)) == sorted(
        f"<msg-{n}@example.org>" for n in range(4)
    )


def test_store_batches_are_bounded_by_bytes() -> None:
    """A batch of stored messages holds at most batch_size messages and (beyond its first
    message) the byte cap, so memory does not grow with batch_size x message size."""
    import datetime as dt

    from intake.mail.message import FetchedMail
    from intake.worker import _chunks

    now = dt.datetime(2018, 7, 20, tzinfo=dt.UTC)
    sizes = [10, 10, 60, 5, 5, 5, 200, 1]
    mails = iter(FetchedMail(raw=b"x" * size, fetched_at=now) for size in sizes)
    batches = [[len(m.raw) for m in chunk] for chunk in _chunks(mails, 3, 64)]
    assert batches == [[10, 10], [60], [5, 5, 5], [200], [1]]
    assert all(len(b) <= 3 and (len(b) == 1 or sum(b) <= 64) for b in batches)
