"""The staff digest: what arrived, what needs a person, how near the deadline is (pure).

Callers gather a :class:`DigestData` from the store; :func:`render_digest` turns it
into an email (plain text, an HTML alternative and a CSV of the period's
submissions). Nothing here reads a clock, a database or the environment, so the
same data always gives the same message, Message-ID included.

Everything a respondent wrote (names, subjects, file names) and every error text
is folded to one line before it reaches the text body, the CSV or a header, and is
escaped by the template engine before it reaches HTML. Instants are aware UTC and
are shown in the consultation's zone (UK time, BST or GMT) via :func:`format_uk`.
"""

from __future__ import annotations

import csv
import datetime as dt
import email.utils
import hashlib
import io
import re
from dataclasses import dataclass
from email.message import EmailMessage
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ..deadline import format_uk
from ..mail.mime import clean_header
from .export import CSV_COLUMNS as EXPORT_CSV_COLUMNS
from .export import csv_safe

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "CSV_COLUMNS",
    "DigestAttachment",
    "DigestData",
    "DigestSkippedPart",
    "DigestSubmission",
    "digest_text",
    "needs_attention",
    "render_digest",
]

TEMPLATES = Path(__file__).parent.parent / "templates"  # shared with ../ack.py

# The export's summary columns, less the two an analyst needs but staff do not.
CSV_COLUMNS = tuple(c for c in EXPORT_CSV_COLUMNS if c not in ("received_at", "message_id"))

# A busy day (a campaign, or the first digest) lists this many in the email; the CSV
# attachment always has every submission of the period.
LISTED_LIMIT = 200
BAR_WIDTH = 40  # the longest bar of the arrivals chart, in characters
_BAR = "\u2588"
_READABLE = ("ok", "empty")
_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")

_ATTACHMENT_STATES = {"ok": "read", "empty": "read, no text", "pending": "not read yet"}
_SUBMISSION_STATES = {
    "received": "received, not read yet",
    "failed": "FAILED: the message could not be read",
    "too_large": "TOO LARGE: only its header was stored",
}
_ACK_STATES = {
    "none": "not decided yet",
    "off": "off",
    "pending": "pending",
    "sent": "sent",
    "suppressed": "suppressed",
    "failed": "FAILED",
    "ack_bounced": "BOUNCED",
}


def _require_aware(value: dt.datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got {value!r}")


@dataclass(frozen=True)
class DigestAttachment:
    """One file of a submission and whether its text could be read."""

    filename: str
    parse_status: str
    error: str | None = None

    @property
    def readable(self) -> bool:
        """True when extraction settled: text was read, or the file had none."""
        return self.parse_status in _READABLE


@dataclass(frozen=True)
class DigestSkippedPart:
    """A part of a message skipped on purpose; ``unread`` when it may hold part of a response."""

    label: str  # its file name, or its content type
    reason: str
    unread: bool = False


@dataclass(frozen=True)
class DigestSubmission:
    """One submission as the digest shows it."""

    reference: str
    sender_name: str | None
    sender_email: str | None
    subject: str | None
    received_at: dt.datetime
    timeliness: str | None
    sent_in_time: bool
    status: str
    ack_status: str
    ack_error: str | None = None
    attachments: tuple[DigestAttachment, ...] = ()
    skipped: tuple[DigestSkippedPart, ...] = ()

    def __post_init__(self) -> None:
        _require_aware(self.received_at, "received_at")

    @property
    def late_but_sent_in_time(self) -> bool:
        """Arrived late, but its own Date header is by the deadline: staff decide."""
        return self.timeliness == "late" and self.sent_in_time


@dataclass(frozen=True)
class DigestData:
    """Everything one digest says, already chosen from the store.

    ``period_start`` None means "since the beginning". ``arrivals_by_day`` holds one
    (UK date, count) pair per day to chart, zero days included, oldest first.
    """

    consultation_name: str
    period_start: dt.datetime | None
    period_end: dt.datetime
    deadline: dt.datetime
    timezone: ZoneInfo
    new: tuple[DigestSubmission, ...]
    totals_received: int
    totals_on_time: int
    totals_late: int
    arrivals_by_day: tuple[tuple[dt.date, int], ...]
    attention_extra: tuple[str, ...] = ()
    retention: str = ""  # when the next retention purge runs and what it removes
    # Responses with a passage tagged per question: (key, title, count), in the call's order.
    per_question: tuple[tuple[str, str, int], ...] = ()
    # Responses per respondent type: (type, count).
    per_type: tuple[tuple[str, int], ...] = ()
    # Campaign copies and superseded versions discounted; None when there are none.
    counted: str | None = None

    def __post_init__(self) -> None:
        if self.period_start is not None:
            _require_aware(self.period_start, "period_start")
        _require_aware(self.period_end, "period_end")
        _require_aware(self.deadline, "deadline")


# ----------------------------------------------------------------------------- wording


def _line(value: str | None, limit: int = 500) -> str:
    """One display line: no control characters, no line breaks, bounded length."""
    return clean_header(value or "", limit)


def _sender(sub: DigestSubmission) -> str:
    name, address = _line(sub.sender_name, 200), _line(sub.sender_email, 320)
    if name and address:
        return f"{name} <{address}>"
    return name or address or "(unknown sender)"


def _timeliness(sub: DigestSubmission) -> str:
    if sub.timeliness == "on_time":
        return "on time"
    if sub.late_but_sent_in_time:
        return "LATE, but sent before the deadline"
    if sub.timeliness == "late":
        return "LATE"
    return "timeliness not known"


def _attachment_state(att: DigestAttachment) -> str:
    known = _ATTACHMENT_STATES.get(att.parse_status)
    return known or f"UNREADABLE: {_line(att.parse_status, 50)}"


def _ack(sub: DigestSubmission) -> str:
    state = _ACK_STATES.get(sub.ack_status, _line(sub.ack_status, 50))
    if sub.ack_error and sub.ack_status in ("suppressed", "failed", "ack_bounced"):
        return f"{state}: {_line(sub.ack_error)}"
    return state


def _day(value: dt.date) -> str:
    return value.strftime("%a %d %b")


def _local_date(instant: dt.datetime, zone: ZoneInfo) -> dt.date:
    return instant.astimezone(zone).date()


def _digest_date(data: DigestData) -> dt.date:
    """The day a digest is labelled with: the local date its period ends."""
    return _local_date(data.period_end, data.timezone)


def _deadline_wording(data: DigestData) -> str:
    """Days left, counted in local dates from the end of the period."""
    days = (_local_date(data.deadline, data.timezone) - _digest_date(data)).days
    if days > 1:
        return f"{days} days left"
    if days == 1:
        return "1 day left, closes tomorrow"
    if days == 0:
        return "closes today" if data.period_end <= data.deadline else "closed today"
    return "closed 1 day ago" if days == -1 else f"closed {-days} days ago"


def _ordered(data: DigestData) -> list[DigestSubmission]:
    return sorted(data.new, key=lambda sub: (sub.received_at, sub.reference))


def needs_attention(data: DigestData) -> list[str]:
    """Lines for staff: what in this period a person has to look at, then ``attention_extra``.

    Per submission (oldest first): a message that could not be read or was too large,
    each unreadable attachment with its error, a late response sent in time, and an
    acknowledgement that was suppressed, failed or bounced.
    """
    lines: list[str] = []
    for sub in _ordered(data):
        ref = _line(sub.reference, 32)
        if sub.status == "failed":
            lines.append(f"{ref}: the message could not be read (failed); it is kept for a rerun")
        elif sub.status == "too_large":
            lines.append(f"{ref}: over the size limit (too_large); only its header was stored")
        for att in sub.attachments:
            if not att.readable:
                detail = f": {_line(att.error)}" if att.error else ""
                lines.append(
                    f'{ref}: attachment "{_line(att.filename, 200)}" unreadable '
                    f"({_line(att.parse_status, 50)}){detail}"
                )
        for part in sub.skipped:
            if part.unread:
                lines.append(f'{ref}: part "{_line(part.label, 200)}" {_line(part.reason, 100)}')
        if sub.late_but_sent_in_time:
            lines.append(
                f"{ref}: late (received {format_uk(sub.received_at, data.timezone)}) "
                "but sent before the deadline; staff to judge"
            )
        reason = _line(sub.ack_error)
        if sub.ack_status == "suppressed":
            lines.append(f"{ref}: acknowledgement suppressed: {reason or 'no reason recorded'}")
        elif sub.ack_status == "failed":
            lines.append(f"{ref}: acknowledgement failed: {reason or 'no error recorded'}")
        elif sub.ack_status == "ack_bounced":
            lines.append(f"{ref}: acknowledgement bounced" + (f": {reason}" if reason else ""))
    lines.extend(_line(extra, 998) for extra in data.attention_extra if _line(extra, 998))
    return lines


def _subject(data: DigestData, attention: int) -> str:
    late = sum(1 for sub in data.new if sub.timeliness == "late")
    new = f"{len(data.new)} new" + (f" ({late} late)" if late else "")
    if attention == 0:
        need = "nothing needs attention"
    else:
        need = f"{attention} {'needs' if attention == 1 else 'need'} attention"
    day = _digest_date(data).strftime("%a %d %b %Y")
    return f"{_line(data.consultation_name, 200)} \u2014 intake digest for {day}: {new}, {need}"


# ----------------------------------------------------------------------------- views


@dataclass(frozen=True)
class _AttachmentView:
    filename: str
    state: str
    readable: bool


@dataclass(frozen=True)
class _SubmissionView:
    reference: str
    sender: str
    subject: str
    received_uk: str
    timeliness: str
    late: bool
    status: str | None
    ack: str
    attachments: tuple[_AttachmentView, ...]


@dataclass(frozen=True)
class _ChartRow:
    label: str
    count: int
    width: int

    @property
    def text(self) -> str:
        return f"{self.label}  {_BAR * self.width} {self.count}"


def _chart(days: tuple[tuple[dt.date, int], ...]) -> list[_ChartRow]:
    """Bars one character per arrival, scaled down when the busiest day exceeds the width."""
    peak = max((count for _, count in days), default=0)
    rows = []
    for day, count in days:
        if peak <= BAR_WIDTH:
            width = count
        else:
            width = max(1, (count * BAR_WIDTH + peak // 2) // peak) if count else 0
        rows.append(_ChartRow(_day(day), count, width))
    return rows


def _view(sub: DigestSubmission, zone: ZoneInfo) -> _SubmissionView:
    return _SubmissionView(
        reference=_line(sub.reference, 32),
        sender=_sender(sub),
        subject=_line(sub.subject) or "(no subject)",
        received_uk=format_uk(sub.received_at, zone),
        timeliness=_timeliness(sub),
        late=sub.timeliness == "late",
        status=None
        if sub.status == "parsed"
        else _SUBMISSION_STATES.get(sub.status, _line(sub.status, 50)),
        ack=_ack(sub),
        attachments=tuple(
            _AttachmentView(_line(att.filename, 200), _attachment_state(att), att.readable)
            for att in sub.attachments
        )
        + tuple(
            _AttachmentView(
                _line(part.label, 200),
                ("NOT READ: " if part.unread else "skipped: ") + _line(part.reason, 100),
                not part.unread,
            )
            for part in sub.skipped
        ),
    )


def _context(data: DigestData) -> dict[str, Any]:
    zone = data.timezone
    ordered = _ordered(data)
    attention = needs_attention(data)
    end = format_uk(data.period_end, zone)
    if data.period_start is None:
        period = f"everything up to {end}"
        empty = "No submissions yet."
    else:
        start = format_uk(data.period_start, zone)
        period = f"{start} to {end}"
        empty = f"No new submissions since {start}."
    title = _line(data.consultation_name, 200)
    day = _digest_date(data).strftime("%a %d %b %Y")
    return {
        "heading": f"{title} \u2014 intake digest for {day}",
        "period": period,
        "deadline_uk": format_uk(data.deadline, zone),
        "deadline_wording": _deadline_wording(data),
        "received": data.totals_received,
        "on_time": data.totals_on_time,
        "late": data.totals_late,
        "counted": data.counted,
        "attention": attention[:LISTED_LIMIT],
        "attention_count": len(attention),
        "submissions": [_view(sub, zone) for sub in ordered[:LISTED_LIMIT]],
        "new_count": len(ordered),
        "empty": empty,
        "chart": _chart(data.arrivals_by_day),
        "retention": _line(data.retention, 998),
        "questions_line": "; ".join(
            f"{key} ({_line(title, 80)}) {count}" for key, title, count in data.per_question
        ),
        "types_line": ", ".join(f"{kind} {count}" for kind, count in data.per_type),
    }


@cache
def _environment() -> jinja2.Environment:
    import jinja2  # only when a digest is rendered

    # .html templates are escaped; the plain text one is not (it is never read as markup).
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _render(name: str, context: dict[str, Any]) -> str:
    return _environment().get_template(name).render(context)


def digest_text(data: DigestData) -> str:
    """The plain text body of the digest."""
    return _render("digest.txt", _context(data))


# ----------------------------------------------------------------------------- CSV


def _csv_cell(value: str) -> str:
    safe: str = csv_safe(value)
    return safe


def _csv(data: DigestData) -> str:
    """The period's submissions, one row each, formula-like cells neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for sub in _ordered(data):
        row = (
            _line(sub.reference, 32),
            format_uk(sub.received_at, data.timezone),
            sub.timeliness or "",
            "True" if sub.sent_in_time else "False",
            _line(sub.sender_name, 200),
            _line(sub.sender_email, 320),
            _line(sub.subject),
            sub.status,
            "; ".join(_line(att.filename, 200) for att in sub.attachments),
            "; ".join(
                [
                    f"{_line(att.filename, 200)} ({att.parse_status})"
                    for att in sub.attachments
                    if not att.readable
                ]
                + [f"{_line(p.label, 200)} ({p.reason})" for p in sub.skipped if p.unread]
            ),
            sub.ack_status,
        )
        writer.writerow([_csv_cell(_line(cell, 998)) for cell in row])
    return buffer.getvalue()


# ----------------------------------------------------------------------------- message


def _message_id(data: DigestData, recipients: tuple[str, ...], body: str, domain: str) -> str:
    """A Message-ID derived from the content, so the same digest always has the same one."""
    clean = _line(domain, 253).strip(".")
    if not _DOMAIN.match(clean):
        raise ValueError(f"not a usable Message-ID domain: {domain!r}")
    digest = hashlib.sha256()
    for part in (data.consultation_name, *recipients, body):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    stamp = data.period_end.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"<digest.{stamp}.{digest.hexdigest()[:16]}@{clean}>"


def render_digest(
    data: DigestData,
    *,
    sender: str,
    recipients: tuple[str, ...],
    message_id_domain: str,
) -> EmailMessage:
    """Build the digest email: text with an HTML alternative and the period's CSV attached.

    Raises:
        ValueError: no recipients, or a Message-ID domain that is not a host name.
    """
    to = [address for address in (_line(r, 320) for r in recipients) if address]
    if not to:
        raise ValueError("a digest needs at least one recipient")
    context = _context(data)
    text = _render("digest.txt", context)
    html = _render("digest.html", context)

    message = EmailMessage()
    message["Subject"] = _line(_subject(data, len(context["attention"])), 250)
    message["From"] = _line(sender, 320)
    message["To"] = ", ".join(to)
    message["Date"] = email.utils.format_datetime(data.period_end.astimezone(dt.UTC))
    message["Message-ID"] = _message_id(data, tuple(to), text, message_id_domain)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    filename = f"intake-digest-{_digest_date(data).isoformat()}.csv"
    message.add_attachment(_csv(data), subtype="csv", filename=filename)
    return message
