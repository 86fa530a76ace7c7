"""The staff digest: golden text, escaping, safe headers, the CSV, deadline wording, attention."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import email
import email.policy
import io
from email.message import EmailMessage

import pytest

from intake.deadline import UK
from intake.staff.digest import (
    CSV_COLUMNS,
    DigestAttachment,
    DigestData,
    DigestSubmission,
    digest_text,
    needs_attention,
    render_digest,
)
from tests.conftest import DATA

UTC = dt.UTC
GOLDEN = DATA / "digest"
NAME = "Keep it Local: call for evidence"
# Friday 27 July 2018 23:59:59 in London (BST) is 22:59:59 UTC.
DEADLINE = dt.datetime(2018, 7, 27, 22, 59, 59, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int, minute: int, second: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def sub(reference: str = "KIL-0001", **changes: object) -> DigestSubmission:
    base = DigestSubmission(
        reference=reference,
        sender_name="Priya Shah",
        sender_email="priya.shah@example.org",
        subject="Keep it Local response",
        received_at=utc(2018, 7, 26, 9, 0, 0),
        timeliness="on_time",
        sent_in_time=False,
        status="parsed",
        ack_status="sent",
        ack_error=None,
        attachments=(),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def days(first: dt.date, counts: list[int]) -> tuple[tuple[dt.date, int], ...]:
    return tuple((first + dt.timedelta(days=i), count) for i, count in enumerate(counts))


def data(**changes: object) -> DigestData:
    base = DigestData(
        consultation_name=NAME,
        period_start=utc(2018, 7, 25, 17, 0, 0),
        period_end=utc(2018, 7, 26, 17, 0, 0),
        deadline=DEADLINE,
        timezone=UK,
        new=(sub(),),
        totals_received=40,
        totals_on_time=40,
        totals_late=0,
        arrivals_by_day=days(dt.date(2018, 7, 13), [0, 2, 1, 0, 0, 3, 4, 2, 5, 1, 0, 6, 9, 5]),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def summer() -> DigestData:
    """The day before the deadline (BST): every kind of trouble, and some good news."""
    new = (
        sub(
            "KIL-0038",
            sender_name="Helen Okafor",
            sender_email="h.okafor@westfield-cvs.example.org",
            subject="Evidence from Westfield CVS",
            received_at=utc(2018, 7, 25, 18, 12, 40),
            attachments=(
                DigestAttachment("Westfield CVS response.docx", "ok", None),
                DigestAttachment("Annex A - contracts.xlsx", "ok", None),
            ),
        ),
        sub(
            "KIL-0039",
            sender_name=None,
            sender_email="office@oldmill-trust.example.org",
            subject=None,
            received_at=utc(2018, 7, 25, 21, 3, 5),
            attachments=(
                DigestAttachment("scan0001.pdf", "needs_ocr", "no text layer: a scanned document"),
                DigestAttachment("blank.txt", "empty", None),
            ),
        ),
        sub(
            "KIL-0040",
            sender_name="Tom Reilly",
            sender_email="tom.reilly@example.net",
            subject="Scale fail - our experience",
            received_at=utc(2018, 7, 26, 7, 45, 0),
            attachments=(
                DigestAttachment("response.pdf", "encrypted", "the PDF needs a password"),
            ),
            ack_status="failed",
            ack_error="SMTP 451 4.7.1 try again later",
        ),
        sub(
            "KIL-0041",
            sender_name="Auto Reply",
            sender_email="reception@council.example.gov.uk",
            subject="Out of office: Keep it Local",
            received_at=utc(2018, 7, 26, 8, 2, 11),
            ack_status="suppressed",
            ack_error="Auto-Submitted: auto-replied",
        ),
        sub(
            "KIL-0042",
            sender_name="Grace Adeyemi",
            sender_email="grace@example.com",
            subject="Local services in Hartley",
            received_at=utc(2018, 7, 26, 11, 30, 59),
            ack_status="ack_bounced",
            ack_error="550 5.1.1 mailbox unavailable",
        ),
        sub(
            "KIL-0043",
            sender_name="Big Attachments Ltd",
            sender_email="bulk@example.com",
            subject="Our full evidence pack",
            received_at=utc(2018, 7, 26, 14, 0, 0),
            timeliness="on_time",
            status="too_large",
            ack_status="pending",
        ),
        sub(
            "KIL-0044",
            sender_name=None,
            sender_email=None,
            subject="(garbled)",
            received_at=utc(2018, 7, 26, 16, 59, 59),
            timeliness=None,
            status="failed",
            ack_status="none",
        ),
    )
    return data(
        new=new,
        totals_received=47,
        totals_on_time=47,
        totals_late=0,
        attention_extra=("Last poll failed at Thu 26 Jul 2018 16:45:00 BST: connection refused",),
    )


def winter() -> DigestData:
    """Long after the deadline, in GMT: two late responses, one of them sent in time."""
    new = (
        sub(
            "KIL-0131",
            sender_name="Dr. Amir Haddad",
            sender_email="a.haddad@university.example.ac.uk",
            subject="Late evidence: community asset transfer",
            received_at=utc(2018, 10, 31, 10, 15, 0),
            timeliness="late",
            sent_in_time=False,
            ack_status="sent",
            attachments=(DigestAttachment("Haddad evidence.odt", "ok", None),),
        ),
        sub(
            "KIL-0132",
            sender_name="Ruth Mills",
            sender_email="ruth.mills@example.org",
            subject="Re: Keep it Local (sent in July, stuck in my outbox)",
            received_at=utc(2018, 11, 1, 0, 30, 0),
            timeliness="late",
            sent_in_time=True,
            ack_status="sent",
        ),
    )
    return data(
        period_start=utc(2018, 10, 31, 0, 0, 0),
        period_end=utc(2018, 11, 1, 9, 0, 0),
        new=new,
        totals_received=132,
        totals_on_time=120,
        totals_late=12,
        arrivals_by_day=days(dt.date(2018, 10, 19), [1, 0, 0, 2, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1]),
    )


def empty() -> DigestData:
    """A quiet period with nothing new and nothing to chart."""
    return data(
        new=(),
        period_start=utc(2018, 7, 26, 17, 0, 0),
        period_end=utc(2018, 7, 27, 17, 0, 0),
        totals_received=47,
        totals_on_time=47,
        arrivals_by_day=(),
    )


CASES = {"summer": summer, "winter": winter, "empty": empty}


def render(d: DigestData) -> EmailMessage:
    return render_digest(
        d,
        sender="Keep it Local intake <intake@keepitlocal.example.org>",
        recipients=("staff@keepitlocal.example.org", "policy@keepitlocal.example.org"),
        message_id_domain="keepitlocal.example.org",
    )


def reparse(message: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def csv_rows(message: EmailMessage) -> tuple[str | None, list[list[str]]]:
    (attachment,) = list(message.iter_attachments())
    return attachment.get_filename(), list(csv.reader(io.StringIO(attachment.get_content())))


class TestGoldenText:
    @pytest.mark.parametrize("case", sorted(CASES))
    def test_text_matches_golden(self, case: str) -> None:
        """The plain text body is exactly the reviewed golden file."""
        expected = (GOLDEN / f"{case}.txt").read_text(encoding="utf-8")
        assert digest_text(CASES[case]()) == expected

    @pytest.mark.parametrize("case", sorted(CASES))
    def test_message_carries_the_same_text(self, case: str) -> None:
        """The text part of the sent message is the text body, surviving a round trip."""
        d = CASES[case]()
        assert body(reparse(render(d)), "plain") == digest_text(d)

    def test_winter_shows_gmt(self) -> None:
        """Times after the clocks go back are shown in GMT, earlier ones in BST."""
        text = digest_text(winter())
        assert "Thu 01 Nov 2018 00:30:00 GMT" in text
        assert "Fri 27 Jul 2018 23:59:59 BST" in text


class TestHtmlEscaping:
    HOSTILE = sub(
        "KIL-0050",
        sender_name="Smith & Sons <Ltd>",
        sender_email="smith@example.org",
        subject="<script>alert(1)</script>",
        attachments=(
            DigestAttachment(
                '<img src=x onerror="alert(2)">.pdf', "corrupt", "bad xref <b>table</b>"
            ),
        ),
        ack_status="suppressed",
        ack_error="<i>robot</i>",
    )

    def html(self) -> str:
        d = data(new=(self.HOSTILE,), attention_extra=("poll <b>failed</b>",))
        return body(render(d), "html")

    def test_subject_is_escaped(self) -> None:
        """A script in a subject appears as text, never as markup."""
        html = self.html()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<script" not in html.lower()

    def test_name_with_ampersand_is_escaped(self) -> None:
        """An ampersand and angle brackets in a name are escaped."""
        html = self.html()
        assert "Smith &amp; Sons &lt;Ltd&gt;" in html
        assert "Smith & Sons" not in html

    def test_file_names_and_errors_are_escaped(self) -> None:
        """File names, parser errors, ack reasons and extra lines are escaped too."""
        html = self.html()
        for raw in ("<img", "<b>table", "<i>robot", "<b>failed"):
            assert raw not in html
        assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;.pdf" in html
        assert "bad xref &lt;b&gt;table&lt;/b&gt;" in html

    def test_no_external_resources(self) -> None:
        """The HTML loads nothing and runs nothing."""
        html = body(render(summer()), "html").lower()
        for needle in ("<script", "src=", "href=", "http:", "https:", "url("):
            assert needle not in html

    def test_consultation_name_is_escaped(self) -> None:
        """The consultation name is escaped in the HTML heading."""
        html = body(render(data(consultation_name="Keep <it> Local & more")), "html")
        assert "Keep &lt;it&gt; Local &amp; more" in html


class TestHeaders:
    def test_subject_counts(self) -> None:
        """The subject names the day, the new and late counts and the attention count."""
        message = render(winter())
        assert message["Subject"] == (
            f"{NAME} \u2014 intake digest for Thu 01 Nov 2018: 2 new (2 late), 1 needs attention"
        )

    def test_subject_plural_and_nothing(self) -> None:
        """Several items say "need"; none says "nothing needs attention"."""
        assert render(summer())["Subject"].endswith(": 7 new, 8 need attention")
        assert render(data())["Subject"].endswith(": 1 new, nothing needs attention")

    def test_header_injection_in_consultation_name(self) -> None:
        """CR/LF in the consultation name cannot add a header or break the subject."""
        hostile = "Keep it Local\r\nBcc: victim@example.com\r\n\r\n<html>"
        message = reparse(render(data(consultation_name=hostile)))
        assert message["Bcc"] is None
        subject = message["Subject"]
        assert "\r" not in subject and "\n" not in subject
        assert subject.startswith(
            "Keep it Local Bcc: victim@example.com <html> \u2014 intake digest"
        )
        head = message.as_bytes().split(b"\n\n", 1)[0]
        assert b"\nBcc:" not in head

    def test_header_injection_in_addresses(self) -> None:
        """CR/LF in the sender or a recipient is folded away."""
        message = render_digest(
            data(),
            sender="intake@example.org\r\nBcc: a@example.com",
            recipients=("staff@example.org\nCc: b@example.com",),
            message_id_domain="example.org",
        )
        message = reparse(message)
        assert message["Bcc"] is None and message["Cc"] is None
        assert "\n" not in message["From"] and "\n" not in message["To"]

    def test_machine_headers(self) -> None:
        """Auto-Submitted, a Message-ID on the given domain, and the Date of period_end."""
        message = reparse(render(summer()))
        assert message["Auto-Submitted"] == "auto-generated"
        message_id = message["Message-ID"].strip()  # a long header may come back folded
        assert message_id.startswith("<digest.20180726T170000Z.")
        assert message_id.endswith("@keepitlocal.example.org>")
        assert message["Date"].datetime == utc(2018, 7, 26, 17, 0, 0)
        assert message["To"] == "staff@keepitlocal.example.org, policy@keepitlocal.example.org"

    def test_message_id_is_stable_and_content_bound(self) -> None:
        """The same digest gets the same Message-ID; a different one gets another."""
        assert render(summer())["Message-ID"] == render(summer())["Message-ID"]
        assert render(summer())["Message-ID"] != render(winter())["Message-ID"]

    @pytest.mark.parametrize("domain", ["", "bad domain", "x>@y", "exa\r\nmple.org", "-bad."])
    def test_bad_message_id_domain(self, domain: str) -> None:
        """A Message-ID domain that is not a host name is refused."""
        with pytest.raises(ValueError):
            render_digest(
                data(),
                sender="a@example.org",
                recipients=("b@example.org",),
                message_id_domain=domain,
            )

    def test_no_recipients(self) -> None:
        """A digest without recipients is refused."""
        with pytest.raises(ValueError):
            render_digest(
                data(), sender="a@example.org", recipients=(" ",), message_id_domain="example.org"
            )

    def test_structure(self) -> None:
        """Text, an HTML alternative, and exactly one CSV attachment."""
        message = reparse(render(summer()))
        assert message.get_content_type() == "multipart/mixed"
        assert [p.get_content_type() for p in message.walk()] == [
            "multipart/mixed",
            "multipart/alternative",
            "text/plain",
            "text/html",
            "text/csv",
        ]


class TestCsvAttachment:
    def test_name_columns_and_rows(self) -> None:
        """One row per new submission, oldest first, with the agreed columns."""
        filename, rows = csv_rows(reparse(render(summer())))
        assert filename == "intake-digest-2018-07-26.csv"
        assert tuple(rows[0]) == CSV_COLUMNS
        assert [row[0] for row in rows[1:]] == [f"KIL-00{n}" for n in range(38, 45)]
        assert rows[2] == [
            "KIL-0039",
            "Wed 25 Jul 2018 22:03:05 BST",
            "on_time",
            "False",
            "",
            "office@oldmill-trust.example.org",
            "",
            "parsed",
            "scan0001.pdf; blank.txt",
            "scan0001.pdf (needs_ocr)",
            "sent",
        ]

    def test_late_sent_in_time_row(self) -> None:
        """Timeliness and sent_in_time are written as stored."""
        _, rows = csv_rows(reparse(render(winter())))
        assert rows[2][:4] == ["KIL-0132", "Thu 01 Nov 2018 00:30:00 GMT", "late", "True"]

    def test_formula_cells_are_neutralised(self) -> None:
        """Cells starting with = + - @ are prefixed so a spreadsheet shows them as text."""
        hostile = sub(
            "KIL-0060",
            sender_name='=HYPERLINK("http://evil.example","click")',
            sender_email="@evil.example",
            subject="+44 20 7946 0000",
            attachments=(DigestAttachment("-cmd.pdf", "ok", None),),
        )
        _, rows = csv_rows(reparse(render(data(new=(hostile,)))))
        row = dict(zip(rows[0], rows[1], strict=True))
        assert row["sender_name"] == '\'=HYPERLINK("http://evil.example","click")'
        assert row["sender_email"] == "'@evil.example"
        assert row["subject"] == "'+44 20 7946 0000"
        assert row["attachments"] == "'-cmd.pdf"

    def test_cells_are_single_line(self) -> None:
        """Line breaks in respondent text never split a CSV record."""
        hostile = sub("KIL-0061", subject="one\r\n=two", sender_name="\n@x")
        _, rows = csv_rows(reparse(render(data(new=(hostile,)))))
        assert len(rows) == 2
        row = dict(zip(rows[0], rows[1], strict=True))
        assert row["subject"] == "one =two"
        assert row["sender_name"] == "'@x"


class TestEmptyPeriod:
    def test_text_says_so(self) -> None:
        """An empty period says plainly that nothing new arrived since its start."""
        text = digest_text(empty())
        assert "No new submissions since Thu 26 Jul 2018 18:00:00 BST." in text
        assert "Nothing needs attention." in text

    def test_html_says_so(self) -> None:
        """The HTML says the same."""
        html = body(render(empty()), "html")
        assert "No new submissions since Thu 26 Jul 2018 18:00:00 BST." in html

    def test_since_the_beginning(self) -> None:
        """With no period start, the digest covers everything and says none arrived yet."""
        text = digest_text(dataclasses.replace(empty(), period_start=None))
        assert "No submissions yet." in text
        assert "Period:   everything up to Fri 27 Jul 2018 18:00:00 BST" in text

    def test_subject_and_csv(self) -> None:
        """The subject counts zero and the CSV has only its header."""
        message = reparse(render(empty()))
        assert message["Subject"].endswith("Fri 27 Jul 2018: 0 new, nothing needs attention")
        _, rows = csv_rows(message)
        assert rows == [list(CSV_COLUMNS)]


def deadline_line(period_end: dt.datetime, deadline: dt.datetime = DEADLINE) -> str:
    text = digest_text(data(period_end=period_end, deadline=deadline, period_start=None))
    (line,) = [line for line in text.splitlines() if line.startswith("Deadline:")]
    return line


class TestDaysLeft:
    def test_days_before(self) -> None:
        """Several days before, the days left are counted in UK dates."""
        assert deadline_line(utc(2018, 7, 20, 9, 0, 0)).endswith("(7 days left)")

    def test_day_before(self) -> None:
        """The day before says one day left."""
        assert deadline_line(utc(2018, 7, 26, 17, 0, 0)).endswith("(1 day left, closes tomorrow)")

    def test_deadline_day(self) -> None:
        """On the deadline day, before the cutoff, it closes today."""
        assert deadline_line(utc(2018, 7, 27, 8, 0, 0)).endswith("(closes today)")

    def test_uk_date_not_utc_date(self) -> None:
        """00:30 BST on the 27th is still the 26th in UTC, but the UK date counts."""
        assert deadline_line(utc(2018, 7, 26, 23, 30, 0)).endswith("(closes today)")

    def test_deadline_day_after_cutoff(self) -> None:
        """Later on the deadline day than an afternoon cutoff, it closed today."""
        five_pm = utc(2018, 7, 27, 16, 0, 0)
        line = deadline_line(utc(2018, 7, 27, 18, 0, 0), deadline=five_pm)
        assert line == "Deadline: Fri 27 Jul 2018 17:00:00 BST (closed today)"

    def test_day_after(self) -> None:
        """The day after says closed one day ago."""
        assert deadline_line(utc(2018, 7, 28, 9, 0, 0)).endswith("(closed 1 day ago)")

    def test_long_after(self) -> None:
        """Months later the count goes on, across the change to GMT."""
        assert deadline_line(utc(2018, 11, 1, 9, 0, 0)).endswith("(closed 97 days ago)")


class TestNeedsAttention:
    def lines(self, *subs: DigestSubmission, extra: tuple[str, ...] = ()) -> list[str]:
        return needs_attention(data(new=subs, attention_extra=extra))

    def test_unreadable_attachment_with_error(self) -> None:
        """An unreadable attachment is listed with its status and error message."""
        s = sub(attachments=(DigestAttachment("a.pdf", "encrypted", "needs a password"),))
        assert self.lines(s) == [
            'KIL-0001: attachment "a.pdf" unreadable (encrypted): needs a password'
        ]

    def test_unreadable_attachment_without_error(self) -> None:
        """An unreadable attachment without an error message is still listed."""
        s = sub(attachments=(DigestAttachment("a.bin", "unsupported", None),))
        assert self.lines(s) == ['KIL-0001: attachment "a.bin" unreadable (unsupported)']

    def test_readable_and_empty_attachments_are_fine(self) -> None:
        """Files that were read, or had no text, need nobody."""
        s = sub(
            attachments=(
                DigestAttachment("a.pdf", "ok", None),
                DigestAttachment("b.txt", "empty", None),
            )
        )
        assert self.lines(s) == []

    def test_failed_and_too_large(self) -> None:
        """A message that could not be read, or was too large, is listed."""
        lines = self.lines(sub("KIL-0001", status="failed"), sub("KIL-0002", status="too_large"))
        assert lines == [
            "KIL-0001: the message could not be read (failed); it is kept for a rerun",
            "KIL-0002: over the size limit (too_large); only its header was stored",
        ]

    def test_acknowledgement_problems(self) -> None:
        """Suppressed (with reason), failed and bounced acknowledgements are listed."""
        lines = self.lines(
            sub("KIL-0001", ack_status="suppressed", ack_error="Precedence: bulk"),
            sub("KIL-0002", ack_status="failed", ack_error="connection refused"),
            sub("KIL-0003", ack_status="ack_bounced"),
            sub("KIL-0004", ack_status="suppressed"),
        )
        assert lines == [
            "KIL-0001: acknowledgement suppressed: Precedence: bulk",
            "KIL-0002: acknowledgement failed: connection refused",
            "KIL-0003: acknowledgement bounced",
            "KIL-0004: acknowledgement suppressed: no reason recorded",
        ]

    def test_late_but_sent_in_time(self) -> None:
        """A late response sent by the deadline is for staff to judge; plain late is not."""
        lines = self.lines(
            sub(
                "KIL-0001",
                timeliness="late",
                sent_in_time=True,
                received_at=utc(2018, 7, 27, 23, 0, 5),
            ),
            sub("KIL-0002", timeliness="late", sent_in_time=False),
        )
        assert lines == [
            "KIL-0001: late (received Sat 28 Jul 2018 00:00:05 BST) "
            "but sent before the deadline; staff to judge"
        ]

    def test_extra_lines_come_last_on_one_line(self) -> None:
        """Lines from elsewhere follow, folded to one line each; blank ones are dropped."""
        lines = self.lines(
            sub(ack_status="failed", ack_error="timeout"),
            extra=("Last poll failed at Fri 27 Jul 2018 09:00:00 BST:\r\nauth error", "  "),
        )
        assert lines == [
            "KIL-0001: acknowledgement failed: timeout",
            "Last poll failed at Fri 27 Jul 2018 09:00:00 BST: auth error",
        ]

    def test_all_good(self) -> None:
        """An on-time, read, acknowledged submission needs nobody."""
        assert self.lines(sub()) == []

    def test_text_and_html_list_the_same_lines(self) -> None:
        """Every attention line appears in both bodies."""
        d = summer()
        text = digest_text(d)
        html = body(render(d), "html")
        lines = needs_attention(d)
        assert len(lines) == 8
        for line in lines:
            assert f"- {line}\n" in text
            assert line.replace('"', "&#34;") in html


class TestChart:
    def chart(self, counts: list[int]) -> list[str]:
        text = digest_text(data(arrivals_by_day=days(dt.date(2018, 7, 23), counts)))
        return text.split("Arrivals per day\n----------------\n", 1)[1].splitlines()

    def test_one_block_per_arrival_when_small(self) -> None:
        """Up to 40 arrivals on the busiest day, each arrival is one block."""
        assert self.chart([4, 0, 1]) == [
            "Mon 23 Jul  \u2588\u2588\u2588\u2588 4",
            "Tue 24 Jul   0",
            "Wed 25 Jul  \u2588 1",
        ]

    def test_scaled_to_forty(self) -> None:
        """A busier day is scaled to 40 blocks; a small non-zero day keeps one block."""
        rows = self.chart([80, 40, 1, 0])
        assert [row.count("\u2588") for row in rows] == [40, 20, 1, 0]
        assert rows[0].endswith(" 80")


class TestValidation:
    def test_naive_datetimes_are_refused(self) -> None:
        """Times inside the program are aware; a naive one is a programming error."""
        with pytest.raises(ValueError):
            sub(received_at=dt.datetime(2018, 7, 26, 9, 0))
        with pytest.raises(ValueError):
            data(period_end=dt.datetime(2018, 7, 26, 9, 0))


class TestBusyPeriod:
    def test_long_periods_are_capped_in_the_email_not_the_csv(self) -> None:
        """A period of 1,000 submissions lists 200 in the body, says how many more, and the CSV has all."""
        import dataclasses
        import datetime as dt

        from intake.staff.digest import LISTED_LIMIT, DigestSubmission

        base = dt.datetime(2018, 7, 26, 9, 0, tzinfo=dt.UTC)
        many = tuple(
            DigestSubmission(
                reference=f"KIL-{n:05d}", sender_name=None, sender_email=f"r{n}@example.org",
                subject=f"Response {n}", received_at=base + dt.timedelta(seconds=n),
                timeliness="on_time", sent_in_time=False, status="parsed", ack_status="sent",
            )
            for n in range(1, 1001)
        )
        data = dataclasses.replace(summer(), new=many)
        text = digest_text(data)
        assert "New submissions (1000)" in text
        assert text.count("KIL-0") == LISTED_LIMIT
        assert f"... and {1000 - LISTED_LIMIT} more" in text
        message = render_digest(data, sender="k@example.org", recipients=("t@example.org",), message_id_domain="example.org")
        (csv_part,) = [p for p in message.iter_attachments()]
        assert csv_part.get_content().count("KIL-0") == 1000
