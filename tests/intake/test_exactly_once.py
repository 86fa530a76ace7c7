"""Exactly-once sending, whoever sends: two workers, an admin's resend loop, one digest a day.

Each "worker" is its own App (its own engine and connections, its own holder), run
in a thread against the real Dovecot, SMTP server and database (SQLite and
PostgreSQL). Also the one real duplicate window: a server that delivers a message
after our client gave up waiting for its reply.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import threading
import time
from collections import Counter

from sqlalchemy import select

from intake.app import App
from intake.errors import DeliveryError
from intake.mail import outbox
from intake.staff.daily import send_digest
from intake.worker import InboxBusy, run_cycle
from store import repo, work
from store.models import Ack, DigestRun, Submission
from tests.conftest import make_settings, smtp_section
from tests.intake.test_poll import AUG, compose
from tests.support import Dovecot, SmtpServer

MESSAGES = 8


def _with_digest(app: App) -> App:
    settings = dataclasses.replace(
        app.settings,
        digest=dataclasses.replace(app.settings.digest, recipients=("team@example.org",)),
    )
    return App(settings)


def test_two_workers_and_a_resend_loop_send_each_ack_once(
    ack_app: App, dovecot: Dovecot, smtp: SmtpServer
) -> None:
    """GIVEN two workers polling, running stages, sending acks and the digest, and an admin
    asking for resends at the same time WHEN they all run together THEN every outbox row
    reaches the server exactly once, each respondent's automatic ack once, one digest."""
    for n in range(MESSAGES):
        dovecot.append(compose(n), AUG)
    smtp.delay_s = 0.05  # each send takes a moment, so the senders overlap
    apps = [_with_digest(ack_app) for _ in range(3)]
    stop = threading.Event()
    errors: list[BaseException] = []
    resends: list[str] = []

    def worker(app: App) -> None:
        holder = work.holder_id()
        try:
            while not stop.is_set():
                with app.pipeline() as pipeline:
                    try:
                        run_cycle(
                            pipeline,
                            app.inbox_factory(),
                            holder=holder,
                            lease_ttl=dt.timedelta(seconds=60),
                        )
                    except InboxBusy:
                        pipeline.read_pending()
                        pipeline.send_acks()
                mailer = app.mailer()
                assert mailer is not None
                send_digest(app.sessions, app.settings, mailer, app.now, scheduled=True)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread below
            errors.append(exc)

    def admin(app: App) -> None:
        rng = random.Random(7)
        try:
            while not stop.is_set():
                with app.sessions() as session:
                    refs = [r for r in session.scalars(select(Submission.reference)) if r]
                    if not refs:
                        continue
                    sub = repo.get_by_reference(session, rng.choice(refs))
                    try:
                        outbox.request_resend(session, sub, app.settings, app.now(), "test")
                    except DeliveryError:
                        continue  # not acknowledged yet: refused, as `intake resend-ack` says
                    session.commit()
                    resends.append(sub.reference or "")
                with app.pipeline() as pipeline:
                    pipeline.send_acks()
                time.sleep(0.05)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread below
            errors.append(exc)

    threads = [
        threading.Thread(target=worker, args=(apps[0],)),
        threading.Thread(target=worker, args=(apps[1],)),
        threading.Thread(target=admin, args=(apps[2],)),
    ]
    for thread in threads:
        thread.start()
    # At least six seconds of all three at once, and until the admin has resent one
    # (on a loaded machine the first acknowledgements take longer to be decided).
    started = time.monotonic()
    while time.monotonic() - started < 6 or (not resends and time.monotonic() - started < 90):
        time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    # Whatever is still due after the stop goes out now, once.
    with apps[0].pipeline() as pipeline:
        pipeline.send_acks()
    for app in apps:
        app.close()
    with ack_app.sessions() as session:
        acks = list(session.scalars(select(Ack)))
        digests = list(session.scalars(select(DigestRun)))
    assert resends and len(acks) == MESSAGES + len(resends)
    assert {a.status for a in acks} == {"sent"}
    digest_mail = [m for m in smtp.messages if "team@example.org" in m.rcpt_tos]
    ack_mail = [m for m in smtp.messages if "team@example.org" not in m.rcpt_tos]
    per_id = Counter(str(m.message["Message-ID"]) for m in ack_mail)
    assert set(per_id) == {a.message_id for a in acks}
    assert max(per_id.values()) == 1, per_id.most_common(3)
    first_acks = Counter(a.to_addr for a in acks if a.sequence == 0)
    assert len(first_acks) == MESSAGES and set(first_acks.values()) == {1}
    assert len(digest_mail) == 1 and len(digests) == 1 and digests[0].status == "sent"


def test_a_live_workers_digest_is_not_sent_again(
    ack_app: App, dovecot: Dovecot, smtp: SmtpServer
) -> None:
    """While one worker is sending today's digest (a slow server), another skips it."""
    app = _with_digest(ack_app)
    other = _with_digest(ack_app)
    smtp.delay_s = 2.0
    mailer = app.mailer()
    assert mailer is not None
    results: list[object] = []
    slow = threading.Thread(
        target=lambda: results.append(
            send_digest(app.sessions, app.settings, mailer, app.now, scheduled=True)
        )
    )
    slow.start()
    time.sleep(0.7)  # the first is inside its SMTP exchange now
    second_mailer = other.mailer()
    assert second_mailer is not None
    assert (
        send_digest(other.sessions, other.settings, second_mailer, other.now, scheduled=True)
        is None
    )
    slow.join()
    assert len(smtp.messages) == 1 and results and results[0] is not None
    app.close()
    other.close()


def test_server_delivering_after_our_timeout_is_the_duplicate_window(
    smtp: SmtpServer, dovecot: Dovecot, db_url: str
) -> None:
    """GIVEN a server that accepts the message after our client timed out (timeout_s) WHEN
    the acknowledgement is retried THEN the respondent has two copies with one Message-ID:
    the documented window. With the server answering in time: one copy."""
    from tests.conftest import imap_section

    settings = make_settings(
        db_url,
        inbox=imap_section(dovecot),
        env={"TEST_IMAP_PASSWORD": dovecot.password},
        extra="\n" + smtp_section(smtp, timeout_s=1),
    )
    app = App(settings)
    dovecot.append(compose(1), AUG)
    smtp.delay_s, smtp.deliver_late = 2.0, True
    with app.pipeline() as pipeline:
        from intake.worker import poll_once

        report = poll_once(pipeline, app.inbox_factory())
    assert report.acks.sent == 0 and report.acks.retrying == 1
    smtp.wait_for(1, timeout=10)  # the server delivered it all the same
    with app.sessions() as session:
        (ack,) = session.scalars(select(Ack))
        assert ack.status == "pending" and ack.claimed_by is None
        ack.next_attempt_at = None  # the retry is due (normally after the backoff)
        session.commit()
    smtp.delay_s, smtp.deliver_late = 0.0, False
    with app.pipeline() as pipeline:
        assert pipeline.send_acks().sent == 1
    ids = [str(m.message["Message-ID"]) for m in smtp.messages]
    assert len(ids) == 2 and len(set(ids)) == 1 and ids[0] == ack.message_id
    app.close()
