"""Never ourselves: our own mail is kept, suppressed as "own address", never a response."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from intake.app import App
from intake.config import parse_settings
from intake.errors import ConfigError
from intake.mail.outbox import own_addresses
from intake.staff.daily import build_digest
from intake.staff.digest import digest_text
from store import repo
from store.models import Ack, Submission
from tests.conftest import imap_section, make_settings, smtp_section
from tests.intake.test_outbox import acks, poll
from tests.intake.test_poll import AUG, compose, submissions
from tests.support import Dovecot, SmtpServer


def _from(raw: bytes, sender: str) -> bytes:
    head, sep, body = raw.partition(b"\n\n")
    lines = [line for line in head.split(b"\n") if not line.lower().startswith(b"from:")]
    return b"\n".join([b"From: " + sender.encode(), *lines]) + sep + body


@pytest.fixture
def own_app(dovecot: Dovecot, smtp: SmtpServer, db_url: str) -> Iterator[App]:
    """Sign-in "consultation" (no @), From with a display name, and one configured alias."""
    settings = make_settings(
        db_url,
        inbox=imap_section(dovecot),
        env={"TEST_IMAP_PASSWORD": dovecot.password},
        extra="\n"
        + smtp_section(smtp, **{"from": "Keep it Local <keepitlocal@example.org>"})
        + '\n[ack]\nown_addresses = ["Shared.Mailbox@example.org"]\n',
    )
    app = App(settings)
    yield app
    app.close()


class TestOwnMail:
    def test_mail_from_our_addresses_is_not_a_response(
        self, own_app: App, dovecot: Dovecot, smtp: SmtpServer
    ) -> None:
        """GIVEN mail from [smtp] from and from an [ack] own_addresses alias, and one response
        THEN only the response is acknowledged and counted; ours are "suppressed: own address"."""
        dovecot.append(_from(compose(1), "Keep it Local <keepitlocal@example.org>"), AUG)
        dovecot.append(_from(compose(2), "shared.mailbox@example.org"), AUG)
        dovecot.append(compose(3), AUG)
        report = poll(own_app)
        assert report.acks.sent == 1
        assert [list(m.rcpt_tos) for m in smtp.messages] == [["respondent3@example.org"]]
        subs = submissions(own_app)
        assert [s.kind for s in subs] == ["own_mail", "own_mail", "response"]
        assert [a.status for a in acks(own_app)] == ["suppressed", "suppressed", "sent"]
        reasons = [a.reason for a in acks(own_app)][:2]
        assert reasons == [
            "own address (keepitlocal@example.org)",
            "own address (shared.mailbox@example.org)",
        ]
        with own_app.sessions() as session:
            assert repo.count_by(session, Submission.status) == {"parsed": 1}
            listed = list(session.scalars(repo.select_submissions()))
            assert [s.reference for s in listed] == ["KIL-00003"]
            text = digest_text(build_digest(session, own_app.settings, own_app.now(), None))
        assert "Totals:   1 received" in text
        assert "KIL-00001: own address (keepitlocal@example.org); kept, but not counted" in text

    def test_our_acknowledgement_coming_back_is_never_acknowledged(
        self, own_app: App, dovecot: Dovecot, smtp: SmtpServer
    ) -> None:
        """A copy of our acknowledgement, even re-sent from another address, starts no loop."""
        dovecot.append(compose(1), AUG)
        poll(own_app)
        copy = smtp.messages[0].message
        del copy["From"]
        copy["From"] = "relay@lists.example.net"  # a forwarder that rewrites the sender
        dovecot.append(copy.as_bytes(), AUG)
        report = poll(own_app)
        assert report.acks.sent == 0 and len(smtp.messages) == 1
        returned = submissions(own_app)[1]
        assert returned.kind == "own_mail" and returned.ack_status == "suppressed"
        with own_app.sessions() as session:
            ack = session.scalar(select(Ack).where(Ack.submission_id == returned.id))
        assert ack is not None and ack.reason is not None
        assert ack.reason.startswith("own address (a copy of our acknowledgement")

    def test_own_mail_is_recorded_with_acknowledgements_off(
        self, imap_app: App, dovecot: Dovecot
    ) -> None:
        """Without [smtp] (no acknowledgements), our own mail is still suppressed, not counted."""
        dovecot.append(_from(compose(1), "Team <Consultation@localhost.example>"), AUG)
        settings = make_settings(
            imap_app.settings.database.url,
            inbox=imap_section(dovecot),
            env={"TEST_IMAP_PASSWORD": dovecot.password},
            extra='\n[ack]\nown_addresses = ["consultation@localhost.example"]\n',
        )
        app = App(settings)
        try:
            poll(app)
            (sub,) = submissions(app)
            assert (sub.kind, sub.ack_status) == ("own_mail", "suppressed")
        finally:
            app.close()


class TestOwnAddresses:
    def test_every_source_of_our_addresses(self, sqlite_url: str) -> None:
        """From with a display name, a shared-mailbox sign-in and the aliases all count."""
        settings = make_settings(
            sqlite_url,
            inbox={
                "imap": {
                    "host": "imap.example.org",
                    "username": "staff@example.org\\consult@example.org",
                }
            },
            extra='\n[smtp]\nhost = "smtp.example.org"\nfrom = "Keep it Local <KIL@example.org>"\n'
            '\n[ack]\nown_addresses = ["alias@example.org"]\n',
        )
        assert own_addresses(settings) == {
            "kil@example.org",
            "staff@example.org",
            "consult@example.org",
            "alias@example.org",
        }

    def test_a_bad_own_address_names_the_key(self) -> None:
        """A display name in [ack] own_addresses is refused with the key and an example."""
        document = {
            "consultation": {"name": "x", "deadline": make_settings.__globals__["DEADLINE"]},
            "maildir": {"path": "/nonexistent"},
            "ack": {"own_addresses": ["Team <team@example.org>"]},
        }
        with pytest.raises(ConfigError, match="ack.own_addresses"):
            parse_settings(document, {})
