"""The acknowledgement a respondent receives, and who must never receive one (pure).

:func:`robot_reason` decides whether a message came from a machine (an
out-of-office, a bounce, a mailing list, ourselves); :func:`render_ack` builds the
message from templates an admin can replace. Every value from a respondent is
cleaned before it reaches a header, and escaped before it reaches HTML.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import functools
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .deadline import format_uk
from .mail.message import UNREAD_REASONS
from .mail.mime import clean_header

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "ACK_MARKER",
    "OWN_ADDRESS",
    "AckAttachment",
    "AckContent",
    "ack_message_id",
    "describe_unread",
    "is_delivery_report",
    "own_mail_reason",
    "render_ack",
    "robot_reason",
]

TEMPLATES = Path(__file__).with_name("templates")
_ROBOT_LOCALPARTS = re.compile(
    r"^(mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?)([+-].*)?$", re.I
)
_VALID_ADDRESS = re.compile(
    r"^[^@\s<>()\[\]\\,;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)

# The reason recorded for our own mail (suppressed, and not counted as a response).
OWN_ADDRESS = "own address"
# The header that marks our acknowledgements, so a copy that comes back is known.
ACK_MARKER = "X-Intake-Ack"
_OUR_ACK_ID = re.compile(r"^<ack\.[A-Za-z0-9-]+\.\d+\.[0-9a-f]+@[^>]+>$")

# What an unreadable file's status means for the respondent, in their words.
ADVICE = {
    "encrypted": "it is password-protected; please send a copy without a password",
    "needs_ocr": "it seems to be a scan or a picture, so we could not read its text; "
    "if you can, please send the original document as a PDF or Word file",
    "corrupt": "the file appears to be damaged; please send it again as a PDF or Word file",
    "unsupported": "we cannot read this kind of file; please send it as a PDF or Word file",
    "too_large": "it is too large for us to read; please send a smaller file, or split it",
    "garbled": "its text came out garbled; please send it again as a PDF or Word file",
    "timeout": "it took too long to read; please send it again as a PDF or Word file",
    "failed": "we could not read it; please send it again as a PDF or Word file",
}


def robot_reason(
    headers: Mapping[str, str],
    sender: str,
    reply_to: str,
    own_addresses: Collection[str],
    message_id: str = "",
) -> str | None:
    """Why this message must not be acknowledged, or None when a person sent it.

    ``headers`` holds the original's header values by canonical name. Our own mail
    (see :func:`own_mail_reason`) is named first, whatever else it carries.
    """
    own = own_mail_reason(headers, sender, reply_to, own_addresses, message_id)
    if own is not None:
        return own
    lower = {name.lower(): value.strip() for name, value in headers.items()}
    auto = lower.get("auto-submitted", "")
    if auto and auto.split(";")[0].strip().lower() != "no":
        return f"Auto-Submitted: {auto}"
    if lower.get("return-path", "").replace(" ", "") == "<>":
        return "Return-Path is empty (a bounce or other automatic message)"
    if "multipart/report" in lower.get("content-type", "").lower():
        return "a delivery or read report (multipart/report)"
    precedence = lower.get("precedence", "").lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    for name in ("list-id", "list-unsubscribe"):
        if name in lower:
            return f"a mailing list message ({name.title()})"
    for name in ("x-autoreply", "x-autorespond", "x-auto-response-suppress"):
        if name in lower:
            return f"an automatic reply ({name.title()})"
    for address in (sender, reply_to):
        if address and _ROBOT_LOCALPARTS.match(address.partition("@")[0]):
            return f"sent from a machine address ({address})"
    target = reply_to or sender
    if not target or not _VALID_ADDRESS.match(target):
        return "no valid address to reply to"
    return None


class SkippedLike(Protocol):
    """A skipped part as the store or the MIME reader records it."""

    @property
    def reason(self) -> str: ...
    @property
    def filename(self) -> str | None: ...
    @property
    def content_type(self) -> str: ...


def describe_unread(skipped: Iterable[SkippedLike]) -> list[str]:
    """One line per skipped part that may hold part of the response (for people to read)."""
    lines = []
    for part in skipped:
        if part.reason not in UNREAD_REASONS:
            continue
        what = part.filename or f"a part of type {part.content_type}"
        lines.append(f"{what} ({part.reason})")
    return lines


def own_mail_reason(
    headers: Mapping[str, str],
    sender: str,
    reply_to: str,
    own_addresses: Collection[str],
    message_id: str = "",
) -> str | None:
    """``"own address (...)"`` when the message is our own mail, else None.

    Our own mail is anything from or replying to one of ``own_addresses`` (the
    ``[smtp] from`` address, the sign-in address, ``[ack] own_addresses``), and any
    copy of one of our acknowledgements: it carries ``X-Intake-Ack``, or our
    acknowledgement's Message-ID together with ``Auto-Submitted: auto-replied``.
    Such mail is never a response and never acknowledged.
    """
    lower = {name.lower(): value.strip() for name, value in headers.items()}
    if "x-intake-ack" in lower:
        return f"{OWN_ADDRESS} (a copy of our acknowledgement: X-Intake-Ack)"
    auto = lower.get("auto-submitted", "").split(";")[0].strip().lower()
    if auto == "auto-replied" and _OUR_ACK_ID.match(message_id.strip()):
        return f"{OWN_ADDRESS} (a copy of our acknowledgement: Auto-Submitted, Message-ID)"
    own = {address.lower() for address in own_addresses}
    for address in (sender, reply_to):
        if address and address.lower() in own:
            return f"{OWN_ADDRESS} ({address})"
    return None


def is_delivery_report(headers: Mapping[str, str], sender: str) -> bool:
    """True for a bounce or delivery status notification (not an out-of-office)."""
    lower = {name.lower(): value.strip() for name, value in headers.items()}
    if "multipart/report" in lower.get("content-type", "").lower():
        return True
    if lower.get("return-path", "").replace(" ", "") == "<>":
        return True
    return bool(re.match(r"^(mailer-daemon|postmaster)@", sender, re.I))


def ack_message_id(reference: str, sequence: int, domain: str, token: str) -> str:
    """Our Message-ID for an acknowledgement: findable in bounces, unique per send."""
    return f"<ack.{reference}.{sequence}.{token}@{domain}>"


@dataclass(frozen=True)
class AckAttachment:
    filename: str
    parse_status: str

    @property
    def readable(self) -> bool:
        return self.parse_status in ("ok", "empty")

    @property
    def advice(self) -> str:
        return ADVICE.get(self.parse_status, ADVICE["failed"])


@dataclass(frozen=True)
class AckContent:
    """Everything an acknowledgement says, already chosen from the database."""

    consultation: str
    reference: str
    to_addr: str
    to_name: str
    subject: str
    original_message_id: str | None
    received_at: dt.datetime
    on_time: bool
    deadline: dt.datetime
    attachments: Sequence[AckAttachment]
    contact: str
    message_id: str
    sender: str
    date: dt.datetime
    too_large: bool = False
    resend: bool = False
    unread_parts: Sequence[str] = ()  # parts of the email skipped unread, described


@functools.cache
def _environment(html: bool) -> jinja2.Environment:
    import jinja2  # only when an acknowledgement is rendered

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=html,  # noqa: S701 - the text part is plain text, never HTML
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _template(path: Path | None, default: str, html: bool) -> jinja2.Template:
    if path is None:
        return _environment(html).get_template(default)  # the loader caches compiled templates
    return _admin_template(str(path), path.stat().st_mtime_ns, html)


@functools.lru_cache(maxsize=8)
def _admin_template(path: str, mtime_ns: int, html: bool) -> jinja2.Template:
    """An admin's template, compiled once per version of the file (mtime in the key)."""
    return _environment(html).from_string(Path(path).read_text(encoding="utf-8"))


def render_ack(
    content: AckContent,
    *,
    subject_format: str,
    template_text: Path | None = None,
    template_html: Path | None = None,
) -> EmailMessage:
    """Build the acknowledgement: plain text with an HTML alternative, safe headers.

    Raises:
        jinja2.TemplateError: an admin's template is broken (checked by ``intake check``).
    """
    content = dataclasses.replace(
        content,
        to_name=clean_header(content.to_name, 100),
        subject=clean_header(content.subject, 200),
        attachments=[
            AckAttachment(clean_header(a.filename, 200), a.parse_status)
            for a in content.attachments
        ],
        unread_parts=[clean_header(part, 300) for part in content.unread_parts],
    )
    values = {
        "c": content,
        "received_uk": format_uk(content.received_at),
        "deadline_uk": format_uk(content.deadline),
        "unreadable": [a for a in content.attachments if not a.readable]
        + list(content.unread_parts),
    }
    text = _template(template_text, "ack.txt", html=False).render(values)
    html = _template(template_html, "ack.html", html=True).render(values)
    subject = subject_format.format(
        subject=clean_header(content.subject, 200) or "your response",
        reference=content.reference,
        consultation=clean_header(content.consultation, 200),
    )
    message = EmailMessage()
    message["Subject"] = clean_header(subject, 250)
    message["From"] = clean_header(content.sender, 320)
    message["To"] = email.utils.formataddr((clean_header(content.to_name, 100), content.to_addr))
    message["Date"] = email.utils.format_datetime(content.date.astimezone(dt.UTC))
    message["Message-ID"] = content.message_id
    if content.original_message_id:
        original = clean_header(content.original_message_id, 900)
        message["In-Reply-To"] = original
        message["References"] = original
    message["Auto-Submitted"] = "auto-replied"
    message[ACK_MARKER] = clean_header(content.reference, 32)
    message["X-Auto-Response-Suppress"] = "All"
    message["Precedence"] = "auto_reply"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message
