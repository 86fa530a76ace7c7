"""Attached or forwarded emails: RFC 822 (.eml) with the stdlib, Outlook .msg with extract-msg.

The text is the message's own body (plain text preferred over HTML in an
alternative); its From/To/Date/Subject lines are kept as a header that is shown but
does not count as content. Attachments and forwarded messages are extracted
recursively through the registry (``ctx.child``), so nesting and member limits
apply. Signatures (PGP, S/MIME) are not attachments a person wrote and are skipped.
"""

from __future__ import annotations

import email.errors
import email.message
import email.policy
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

from parsers.charset import decode_text
from parsers.errors import CorruptDocument
from parsers.html import decode_html, html_to_text
from parsers.versions import package_parser, stdlib_parser

if TYPE_CHECKING:
    from parsers.context import ExtractContext, Extraction

__all__ = ["EML_PARSER", "MSG_PARSER", "extract_eml", "extract_msg"]

EML_PARSER = stdlib_parser("email")
MSG_PARSER = package_parser("extract-msg")
_HEADERS = ("From", "To", "Cc", "Date", "Subject")
_SIGNATURES = {
    "application/pgp-signature",
    "application/pkcs7-signature",
    "application/x-pkcs7-signature",
    "application/pgp-keys",
}
_HEADER_ERRORS = (
    ValueError,
    TypeError,
    IndexError,
    AttributeError,
    LookupError,
    email.errors.MessageError,
)
_MAX_MIME_DEPTH = 60


def extract_eml(data: bytes, ctx: ExtractContext) -> Extraction:
    """Extract an RFC 822 message: body text plus its attachments as parts."""
    from parsers.context import Extraction

    message = BytesParser(policy=email.policy.default).parsebytes(data)
    found = Extraction(header=_header_block(message))
    body: list[str] = []
    _walk(message, ctx, body, found, 0)
    found.text = "\n\n".join(body)
    return found


def _header_block(message: email.message.Message) -> str:
    lines = []
    for name in _HEADERS:
        try:
            value = message.get(name)
            text = " ".join(str(value).split()) if value is not None else ""
        except _HEADER_ERRORS:
            text = ""
        if text:
            lines.append(f"{name}: {text}")
    return "\n".join(lines)


def _walk(
    part: email.message.Message, ctx: ExtractContext, body: list[str], found: Extraction, depth: int
) -> None:
    if ctx.budget[0] <= 0 or depth > _MAX_MIME_DEPTH:
        if "some parts were skipped (too many or nested too deeply)" not in found.warnings:
            found.warnings.append("some parts were skipped (too many or nested too deeply)")
        return
    ctx.check_time(" while reading the email's parts")
    kind = part.get_content_type()
    if part.is_multipart():
        subparts = [p for p in part.get_payload() if isinstance(p, email.message.Message)]
        if kind == "multipart/alternative" and subparts:
            plain = [p for p in subparts if p.get_content_type() == "text/plain"]
            subparts = plain[:1] or subparts[-1:]
        for sub in subparts:
            _walk(sub, ctx, body, found, depth + 1)
        return
    if kind in _SIGNATURES:
        return
    filename = _filename(part)
    if kind == "message/rfc822":
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        raw = _as_bytes(inner) if isinstance(inner, email.message.Message) else b""
        found.parts.append(ctx.child(raw, filename or "forwarded message", kind))
        return
    try:
        data = part.get_payload(decode=True)
    except _HEADER_ERRORS:
        data = None
    data = data if isinstance(data, bytes) else b""
    disposition = _disposition(part)
    if kind in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        text = decode_text(data, _charset(part))
        body.append(html_to_text(text) if kind == "text/html" else text)
        return
    found.parts.append(ctx.child(data, filename, kind))


def _filename(part: email.message.Message) -> str | None:
    try:
        name = part.get_filename()
    except _HEADER_ERRORS:
        return None
    return " ".join(str(name).split()) if name else None


def _disposition(part: email.message.Message) -> str | None:
    try:
        return part.get_content_disposition()
    except _HEADER_ERRORS:
        return None


def _charset(part: email.message.Message) -> str | None:
    try:
        return part.get_content_charset()
    except _HEADER_ERRORS:
        return None


def _as_bytes(message: email.message.Message) -> bytes:
    try:
        return message.as_bytes(policy=email.policy.compat32)
    except (*_HEADER_ERRORS, UnicodeError):
        return str(message).encode("utf-8", "replace")


_DAMAGED_MSG = (
    "This Outlook message (.msg) is damaged and could not be read; "
    "please forward the original email instead."
)


def extract_msg(data: bytes, ctx: ExtractContext) -> Extraction:
    """Extract an Outlook .msg: body (plain, else HTML) and its attachments as parts."""
    # Imported here: extract-msg takes a quarter of a second to import, and most runs
    # of the command line never meet an Outlook file.
    from extract_msg import openMsg
    from extract_msg.enums import AttachmentType
    from extract_msg.exceptions import ExMsgBaseException

    from parsers.context import Extraction

    damaged = (
        ExMsgBaseException,
        OSError,
        ValueError,
        KeyError,
        TypeError,
        IndexError,
        AttributeError,
        NotImplementedError,
    )
    try:
        message: Any = openMsg(data)  # Message, or a contact/appointment/task item
    except damaged as exc:
        raise CorruptDocument(_DAMAGED_MSG) from exc
    try:
        lines = []
        for label, value in (
            ("From", message.sender),
            ("To", message.to),
            ("Cc", message.cc),
            ("Date", message.date),
            ("Subject", message.subject),
        ):
            if value:
                lines.append(f"{label}: {' '.join(str(value).split())}")
        text = message.body or ""
        if not text.strip() and message.htmlBody:
            text = html_to_text(decode_html(message.htmlBody))
        found = Extraction(text=text, header="\n".join(lines))
        for attachment in message.attachments:
            ctx.check_time(" while reading the message's attachments")
            name = getattr(attachment, "longFilename", None) or getattr(attachment, "name", None)
            if attachment.type is AttachmentType.MSG:
                raw = attachment.data.exportBytes()
                found.parts.append(
                    ctx.child(raw, name or "attached message", "application/vnd.ms-outlook")
                )
            elif isinstance(attachment.data, bytes):
                found.parts.append(ctx.child(attachment.data, name, None))
            else:
                found.warnings.append(f"attachment {name!r} could not be read")
        return found
    except damaged as exc:
        raise CorruptDocument(_DAMAGED_MSG) from exc
    finally:
        message.close()
