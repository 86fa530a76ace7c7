"""Read one raw message into an :class:`Envelope` and its attachments (pure).

Everything here must survive hostile input: malformed MIME becomes a recorded defect,
never an exception. File names from the message are cleaned for display and never
used as paths.
"""

from __future__ import annotations

import binascii
import datetime as dt
import email
import email.utils
import hashlib
import re
import unicodedata
from collections.abc import Callable
from email import headerregistry, policy
from email.message import EmailMessage, Message
from typing import Any

import parsers
from parsers.charset import decode_text
from parsers.result import MB

from .message import AttachmentPart, Envelope, SkippedPart, SkipReason

__all__ = [
    "clean_filename",
    "decoded_leaves",
    "clean_header",
    "parse_message",
    "message_id_of",
    "read_message",
    "sniff_message_id",
    "SIGNATURE_IMAGE_MAX",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
MAX_NESTING = 10
MAX_PARTS = 1000
PART_LIMIT_DEFECT = "PartLimitExceeded"


def clean_header(value: str, limit: int = 998) -> str:
    """Fold a header value to one safe line: no control characters, bounded length."""
    value = _CONTROL.sub(" ", value)
    return " ".join(value.split())[:limit]


def clean_filename(name: str | None, position: int, content_type: str) -> str:
    """A display name for an attachment: no folders, no control characters, never empty."""
    name = clean_header(name or "", 500)
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".")
    name = unicodedata.normalize("NFC", name)[:200]
    if not name:
        subtype = content_type.partition("/")[2] or "bin"
        ext = {"plain": "txt", "octet-stream": "bin"}.get(subtype, subtype.split("+")[0][:10])
        name = f"attachment-{position}.{ext}"
    return name


class _HeaderFactory(headerregistry.HeaderRegistry):
    """The modern policy's header registry, minus its repeated costs.

    The stdlib builds a new header class on every lookup; this builds each once. The
    headers that describe a part's structure repeat across messages ("text/plain;
    charset=utf-8"), so their parsed objects are kept and shared (they are never
    changed after they are made): at most 4,096 of them, each under 256 characters.
    Values and behaviour are the stdlib's own.
    """

    _SHARED = frozenset({"content-type", "content-disposition", "content-transfer-encoding"})
    _SHARED_MAX = 4096
    _SHARED_LENGTH = 256

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, Any] = {}
        self._shared: dict[tuple[str, str], headerregistry.BaseHeader] = {}

    def __getitem__(self, name: str) -> Any:
        key = name.lower()
        found = self._classes.get(key)
        if found is None:
            found = self._classes[key] = super().__getitem__(name)
        return found

    def __call__(self, name: str, value: str) -> Any:
        if len(value) >= self._SHARED_LENGTH or name.lower() not in self._SHARED:
            return self[name](name, value)
        key = (name, value)
        found = self._shared.get(key)
        if found is None:
            if len(self._shared) >= self._SHARED_MAX:
                self._shared.clear()
            found = self._shared[key] = self[name](name, value)
        return found

    def kind(self, name: str) -> type:
        """The registry's class for a header name (not the per-call subclass)."""
        return self.registry.get(name.lower(), self.default_class)


_FACTORY = _HeaderFactory()
# The modern policy (policy.default) in every respect but the cost of its header lookups.
_POLICY = policy.default.clone(header_factory=_FACTORY)

# A header block the stdlib parser reads without a defect: every line a "Name:" field
# or a folded continuation, each ended by LF or CRLF (never a lone CR).
_CLEAN_HEAD = re.compile(rb"(?:[\x21-\x39\x3b-\x7e]+:[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*)*")
# Runs of base64 lines the parser need not see one at a time (see _lift). The last
# line's line break stays in the message, so the parser splits parts exactly as before.
_B64_RUN = re.compile(
    rb"^(?:[A-Za-z0-9+/]{40,}={0,2}\r?\n){15,}[A-Za-z0-9+/]+={0,2}(?=\r?\n)", re.MULTILINE
)
_LIFT_TAG = "INTAKELIFT"
_LIFT_MARK = re.compile(_LIFT_TAG + r"(\d+)X")


def _single_part(raw: bytes) -> EmailMessage | None:
    """A non-multipart message with a clean header block, read without the line parser.

    Gives exactly the message ``email.message_from_bytes(raw, policy=policy.default)``
    would (same headers, payload and defects); None when the message is multipart,
    message/*, or its header block is anything but plain, for the full parser.
    """
    head = _CLEAN_HEAD.match(raw)
    assert head is not None  # the pattern matches the empty string
    end = head.end()
    if raw.startswith(b"\r\n", end):
        start = end + 2
    elif raw.startswith(b"\n", end) or end == len(raw):
        start = end + 1
    else:
        return None  # a line that is not a header field: the parser records a defect
    message = EmailMessage(_POLICY)
    name, lines = "", []
    # bytes.splitlines breaks at CR and LF only, as the parser does (str.splitlines
    # would also break at FF, VT and others).
    for data in raw[:end].splitlines(keepends=True):
        line = data.decode("ascii", "surrogateescape")
        if line[0] in " \t":
            lines.append(line)
            continue
        if name:
            message.set_raw(*_POLICY.header_source_parse(lines))
        name, lines = line[: line.index(":")], [line]
    if name:
        message.set_raw(*_POLICY.header_source_parse(lines))
    if message.get_content_maintype() in ("multipart", "message"):
        return None
    message.set_payload(raw[start:].decode("ascii", "surrogateescape"))
    return message


class _Parsed:
    """A raw message parsed exactly as the modern policy parses it, but cheaper.

    A single-part message skips the line parser. Otherwise long runs of base64 lines
    are lifted out before the line parser reads the message (it splits every line and
    joins them again) and put back into the parts afterwards. With ``lazy``, a part
    that is nothing but one such run, declared base64, keeps its marker and
    :meth:`payload` decodes it in one pass straight from the raw bytes.
    """

    def __init__(self, raw: bytes, *, lazy: bool = False) -> None:
        self.raw = raw
        self.runs: list[tuple[int, int]] = []  # spans of raw
        self._lazy: dict[int, memoryview] = {}
        single = _single_part(raw)
        if single is not None:
            self.message = single
            return
        message = email.message_from_bytes(self._lift(raw), policy=_POLICY)
        assert isinstance(message, EmailMessage)
        self.message = message
        if self.runs:
            self._restore(message, lazy)

    def _lift(self, raw: bytes) -> bytes:
        if _LIFT_TAG.encode() in raw:
            return raw
        pieces: list[bytes] = []
        last = 0
        for match in _B64_RUN.finditer(raw):
            pieces += [raw[last : match.start()], b"INTAKELIFT%dX" % len(self.runs)]
            self.runs.append(match.span())
            last = match.end()
        if not self.runs:
            return raw
        pieces.append(raw[last:])
        return b"".join(pieces)

    def _text(self, match: re.Match[str]) -> str:
        start, end = self.runs[int(match.group(1))]
        return self.raw[start:end].decode("ascii")

    def _restore(self, message: Message, lazy: bool) -> None:
        for part in message.walk():
            for attr in ("preamble", "epilogue"):
                value = getattr(part, attr)
                if isinstance(value, str) and _LIFT_TAG in value:
                    setattr(part, attr, _LIFT_MARK.sub(self._text, value))
            body = part._payload  # type: ignore[attr-defined]  # noqa: SLF001 - get_payload() would decode it
            if not isinstance(body, str) or _LIFT_TAG not in body:
                continue
            if lazy:
                run = self._whole_base64(part, body)
                if run is not None:
                    self._lazy[id(part)] = run
                    continue
            part.set_payload(_LIFT_MARK.sub(self._text, body))

    def _whole_base64(self, part: Message, body: str) -> memoryview | None:
        """The run that is a base64 part's whole body, when it is valid base64 as it stands.

        Then ``get_payload(decode=True)`` would decode it with no defect, and so does
        ``a2b_base64`` on the lines as they are.
        """
        match = _LIFT_MARK.match(body)
        if match is None or body[match.end() :] not in ("", "\n", "\r\n"):
            return None
        if part.get_content_maintype() == "multipart":
            return None
        if str(part.get("content-transfer-encoding", "")).lower() != "base64":
            return None
        raw = self.raw
        start, end = self.runs[int(match.group(1))]
        size = end - start - raw.count(b"\n", start, end) - raw.count(b"\r", start, end)
        padding = 0
        while padding < 2 and raw[end - 1 - padding] == 0x3D:  # "=" (never more than two)
            padding += 1
        if size % 4 or raw.count(b"=", start, end) != padding:
            return None
        return memoryview(raw)[start:end]

    def payload(self, part: Message) -> Any:
        """``part.get_payload(decode=True)``."""
        run = self._lazy.get(id(part))
        if run is not None:
            return binascii.a2b_base64(run)
        return part.get_payload(decode=True)


def parse_message(raw: bytes) -> EmailMessage:
    """Parse raw bytes with the modern email policy (never raises on bad MIME)."""
    return _Parsed(raw).message


def _eight_bit(raw: str) -> str:
    """A header sent as raw 8-bit bytes (against RFC 5322), read as UTF-8, else Windows-1252.

    The parser keeps such bytes as surrogate escapes and shows them as U+FFFD; old
    mail programs send Latin-1 ("Forma\xe7\xe3o"), newer ones UTF-8.
    """
    data = raw.encode("ascii", "surrogateescape")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("cp1252", "replace")
    return " ".join(text.split())


_ATEXT = r"[A-Za-z0-9_+-]+"
_PLAIN_ADDR = rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
# The address headers our mail carries most: "a@b", "<a@b>", "Name <a@b>" and
# "\"Name\" <a@b>", with no character the modern parser would treat specially.
_PLAIN_MAILBOX = re.compile(
    rf"[ \t]*(?:(?P<bare>{_PLAIN_ADDR})"
    rf"|(?:\"(?P<quoted>[A-Za-z0-9'.,&()_-](?:[A-Za-z0-9 '.,&()_-]*[A-Za-z0-9'.,&()_-])?)\""
    rf"|(?P<phrase>[A-Za-z0-9'_-]+(?:[ \t]+[A-Za-z0-9'_-]+)*))?"
    rf"[ \t]*<(?P<angled>{_PLAIN_ADDR})>)[ \t]*"
)
_SPECIALS = frozenset('()<>@,:;.\\"[]')


def _plain_value(name: str, raw: str) -> str | None:
    """``str(message.get(name))`` under the modern policy, for the plain values that need
    no header parser (no encoded words, no 8-bit bytes); None for anything else."""
    value = raw.replace("\r", "").replace("\n", "")  # as the policy unfolds it
    if not value.isascii() or "=?" in value:
        return None
    kind = _FACTORY.kind(name)
    if issubclass(kind, headerregistry.UnstructuredHeader):
        return value
    if issubclass(kind, headerregistry.AddressHeader):
        match = _PLAIN_MAILBOX.fullmatch(value)
        if match is None:
            return None
        if match["bare"]:
            return match["bare"]
        shown = match["quoted"] or " ".join((match["phrase"] or "").split())
        if not shown:
            return match["angled"]
        if not _SPECIALS.isdisjoint(shown):
            shown = '"' + shown + '"'  # no backslash or quote can be in it
        return f"{shown} <{match['angled']}>"
    return None


def _first_raw(message: Message, name: str) -> tuple[str, str] | None:
    """The first header of this name as stored (its name as written, its raw value)."""
    index: dict[str, tuple[str, str]] | None = getattr(message, "_intake_first_raw", None)
    if index is None:  # built once per message: a read asks for about twenty headers
        index = {}
        for key, raw in message.raw_items():
            index.setdefault(key.lower(), (key, raw))
        message._intake_first_raw = index  # type: ignore[attr-defined]
    return index.get(name.lower())


def _header(message: Message, name: str) -> str:
    """A header's decoded value; the raw value when the decoder chokes on it."""
    found = _first_raw(message, name)
    if found is None:
        return ""
    plain = _plain_value(*found)
    if plain is not None:
        return plain
    return _parsed_header(message, name)


def _parsed_header(message: Message, name: str) -> str:
    """:func:`_header` through the modern policy's header parser."""
    try:
        value = message.get(name)
        text = "" if value is None else str(value)
        if "\ufffd" in text:
            for key, raw in message.raw_items():
                if key.lower() == name.lower() and any("\udc80" <= c <= "\udcff" for c in raw):
                    return _eight_bit(raw)
        return text
    except Exception:  # noqa: BLE001 - the stdlib header parser has many failure modes
        for key, raw in message.raw_items():
            if key.lower() == name.lower():
                return str(raw)
        return ""


def _date(value: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # "-0000": the time is UTC with no zone information
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        return parsed.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        return None


def _sent_at(message: Message) -> dt.datetime | None:
    found = _first_raw(message, "Date")
    if found is not None and found[1].isascii():
        # The policy's Date header is the value itself when it does not parse, else the
        # parsed date written out again, which reads back as the same instant.
        return _date(found[1].replace("\r", "").replace("\n", ""))
    return _date(_parsed_header(message, "Date"))


def _topmost_received(message: Message) -> dt.datetime | None:
    topmost: str | None = None
    for key, raw in message.raw_items():
        if key.lower() != "received":
            continue
        text = _plain_value(key, raw)
        if text is None:
            try:  # as message.get_all("Received"), which fails if any one does
                text = str(_POLICY.header_fetch_parse(key, raw))
            except Exception:  # noqa: BLE001
                return None
        if topmost is None:
            topmost = text
    if topmost is None:
        return None
    _, _, when = topmost.rpartition(";")
    return _date(when.strip())


def _address(value: str) -> tuple[str, str]:
    try:
        pairs = email.utils.getaddresses([value])
    except Exception:  # noqa: BLE001
        pairs = []
    for name, addr in pairs:
        addr = clean_header(addr, 320)
        if "@" in addr:
            return clean_header(name, 200), addr.lower()
    return "", ""


class _Blobs:
    """Big base64 bodies lifted out of a large message before the stdlib parses it.

    The stdlib parser splits a body into one string per line and joins them again:
    a 34 MB message costs it about 260 MB and seconds of CPU. So, in messages over
    4 MB, each run of 512 or more base64 lines is replaced by a one-line marker, the
    reduced message is parsed, and a part whose body holds markers is decoded from
    the original bytes. A marker in a part that is not base64 is put back as text.
    """

    THRESHOLD = 4 * MB
    _RUN = re.compile(rb"(?:^[A-Za-z0-9+/]{40,}={0,2}\r?\n){512,}", re.MULTILINE)
    _MARKER = re.compile(r"INTAKEBLOB(\d+)X\r?\n?")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.decode: Callable[[Message], Any] = lambda part: part.get_payload(decode=True)
        self.spans: list[tuple[int, int]] = []
        self.reduced = raw
        if len(raw) < self.THRESHOLD:
            return
        pieces, last = [], 0
        for match in self._RUN.finditer(raw):
            pieces += [raw[last : match.start()], b"INTAKEBLOB%dX\r\n" % len(self.spans)]
            self.spans.append(match.span())
            last = match.end()
        if self.spans:
            pieces.append(raw[last:])
            self.reduced = b"".join(pieces)

    def payload(self, part: Message) -> bytes | None:
        """The decoded body of a leaf part, as ``get_payload(decode=True)`` gives it."""
        if self.spans:
            body = part.get_payload()
            if isinstance(body, str) and "INTAKEBLOB" in body:
                if part.get("Content-Transfer-Encoding", "").strip().lower() == "base64":
                    return binascii.a2b_base64(self._restored_bytes(body))
                part.set_payload(self._restore(body))
        payload = self.decode(part)
        return payload if isinstance(payload, bytes) else None

    def _restored_bytes(self, body: str) -> bytes:
        """``self._restore(body).encode("latin-1")`` without copying the runs twice."""
        pieces: list[bytes | memoryview] = []
        last = 0
        view = memoryview(self.raw)
        for match in self._MARKER.finditer(body):
            pieces.append(body[last : match.start()].encode("latin-1"))
            start, end = self.spans[int(match.group(1))]
            pieces.append(view[start:end])
            last = match.end()
        pieces.append(body[last:].encode("latin-1"))
        return b"".join(pieces)

    def _restore(self, body: str) -> str:
        def original(match: re.Match[str]) -> str:
            start, end = self.spans[int(match.group(1))]
            return self.raw[start:end].decode("latin-1")

        return self._MARKER.sub(original, body)


def _text_of(part: Message, blobs: _Blobs | None = None) -> str:
    """Decoded text of a text/* part, whatever its declared charset claims."""
    payload = blobs.payload(part) if blobs is not None else part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    text = decode_text(payload, part.get_content_charset())
    if part.get_content_type() == "text/html":
        text = parsers.html_to_text(text)  # lxml loads on the first HTML body
    return text.replace("\r\n", "\n").strip()


# Machinery: never a document a respondent chose to send.
_SKIPPED_TYPES = {
    "application/pgp-signature": SkipReason.DIGITAL_SIGNATURE,
    "application/pkcs7-signature": SkipReason.DIGITAL_SIGNATURE,
    "application/x-pkcs7-signature": SkipReason.DIGITAL_SIGNATURE,
    "message/delivery-status": SkipReason.DELIVERY_REPORT,
    "message/disposition-notification": SkipReason.DELIVERY_REPORT,
    "text/rfc822-headers": SkipReason.DELIVERY_REPORT,
    "text/calendar": SkipReason.CALENDAR,
    "application/ics": SkipReason.CALENDAR,
    "text/vcard": SkipReason.CONTACT_CARD,
    "text/x-vcard": SkipReason.CONTACT_CARD,
    "text/directory": SkipReason.CONTACT_CARD,
}
_BODY_TYPES = ("text/plain", "text/html")
# An inline image no bigger than this, shown by the HTML body (cid:), is a logo or a
# signature; anything bigger may be a photo of a handwritten response.
SIGNATURE_IMAGE_MAX = 32 * 1024
_CID = re.compile(r"cid:([^\s\"'<>)]+)", re.IGNORECASE)


def _safe_filename(part: Message) -> str | None:
    try:
        return part.get_filename()
    except Exception:  # noqa: BLE001 - a mangled RFC 2231 name must not stop the read
        return None


def _safe_has_filename(part: Message) -> bool:
    return _safe_filename(part) is not None


def _content_id(part: Message) -> str:
    return clean_header(_header(part, "Content-ID"), 500).strip("<>").lower()


class _Types:
    """Each part's content type, parsed once (the stdlib re-parses the header per call)."""

    def __init__(self) -> None:
        self._seen: dict[int, str] = {}

    def __call__(self, part: Message) -> str:
        key = id(part)  # parts live as long as the message being read
        found = self._seen.get(key)
        if found is None:
            found = self._seen[key] = part.get_content_type()
        return found

    def main(self, part: Message) -> str:
        return self(part).partition("/")[0]


def _shown_ids(
    message: Message, limit: int, types: _Types, decode: Callable[[Message], Any]
) -> set[str]:
    """Content-IDs the HTML parts show (``cid:`` references), lower case."""
    found: set[str] = set()
    for n, part in enumerate(message.walk()):
        if n >= limit:
            break
        if types(part) == "text/html":
            try:
                payload = decode(part)
            except Exception:  # noqa: BLE001, S112 - nothing to find in an undecodable part
                continue
            if isinstance(payload, bytes):
                text = payload.decode("latin-1")
                found.update(m.group(1).lower() for m in _CID.finditer(text))
    return found


def _preferred(children: list[Message], blobs: _Blobs, types: _Types) -> Message | None:
    """The version of a multipart/alternative body we read: plain text when it says something."""
    for child in children:
        if types(child) == "text/plain" and not _safe_has_filename(child):
            try:
                if _text_of(child, blobs):
                    return child
            except Exception:  # noqa: BLE001, S112 - an undecodable version is not preferred
                continue
    for child in reversed(children):  # the last is the richest (RFC 2046)
        if types(child) == "text/html" or types.main(child) == "multipart":
            return child
    return children[-1] if children else None


class _Walker:
    """Accounts for every leaf of a message tree: body text, attachment or skipped part."""

    def __init__(
        self, max_depth: int, max_parts: int, blobs: _Blobs, shown_ids: set[str], types: _Types
    ) -> None:
        self.blobs = blobs
        self.types = types
        self.max_depth = max_depth
        self.max_parts = max_parts
        self.shown_ids = shown_ids
        self.attachments: list[AttachmentPart] = []
        self.skipped: list[SkippedPart] = []
        self.defects: list[str] = []
        self.seen_parts = 0
        self.leaves = 0
        self.body_parts = 0
        self._over_limit = False

    def walk(
        self,
        message: Message,
        texts: list[str],
        depth: int,
        nested_in: str | None,
        other_version: bool = False,
    ) -> None:
        self.seen_parts += 1
        self.defects.extend(type(defect).__name__ for defect in message.defects)
        if depth > self.max_depth or self.seen_parts > self.max_parts:
            self.defects.append(PART_LIMIT_DEFECT)
            if not self._over_limit:
                self._over_limit = True
                self.skipped.append(
                    SkippedPart(self.leaves + 1, self.types(message), SkipReason.PART_LIMIT)
                )
            return
        if message.is_multipart():
            payload = message.get_payload()
            children = [
                c for c in (payload if isinstance(payload, list) else []) if isinstance(c, Message)
            ]
            chosen = (
                _preferred(children, self.blobs, self.types)
                if self.types(message) == "multipart/alternative"
                else None
            )
            for child in children:
                if self._is_forward(child):
                    self._forwarded(child, texts, depth)
                else:
                    rejected = other_version or (chosen is not None and child is not chosen)
                    self.walk(child, texts, depth + 1, nested_in, rejected)
            return
        if self._is_forward(message):
            self._forwarded(message, texts, depth)
            return
        self._leaf(message, texts, nested_in, other_version)

    def _leaf(
        self, part: Message, texts: list[str], nested_in: str | None, other_version: bool
    ) -> None:
        self.leaves += 1
        ctype = self.types(part)
        maintype = ctype.partition("/")[0]
        disposition = (part.get_content_disposition() or "").lower()
        filename = _safe_filename(part)
        reason = _SKIPPED_TYPES.get(ctype)
        if reason is None and other_version and maintype == "text":
            reason = SkipReason.BODY_VERSION
        if reason is not None:
            self._skip(part, reason, filename)
            return
        if maintype == "multipart":
            # A multipart whose boundary is missing or wrong: its text is all there is.
            self.defects.append("BrokenMultipart")
            raw = part.get_payload()
            text = raw.strip() if isinstance(raw, str) else ""
            if not text:
                self._skip(part, SkipReason.EMPTY, None, 0)
                return
            self.body_parts += 1
            texts.append(text.replace("\r\n", "\n"))
            return
        if ctype in _BODY_TYPES and not filename and disposition != "attachment":
            self.body_parts += 1
            try:
                text = _text_of(part, self.blobs)
            except Exception:  # noqa: BLE001 - keep the part as a file instead
                self.defects.append("UndecodablePayload")
                self._attachment(part, nested_in)
                return
            if text:
                texts.append(text)
            return
        if maintype == "image" and disposition != "attachment":
            data = self._payload(part)
            if len(data) <= SIGNATURE_IMAGE_MAX and (
                not filename or _content_id(part) in self.shown_ids
            ):
                self._skip(part, SkipReason.SIGNATURE_IMAGE, filename, len(data))
                return
            self._attachment(part, nested_in, data)
            return
        self._attachment(part, nested_in)

    def _skip(
        self, part: Message, reason: SkipReason, filename: str | None, size: int | None = None
    ) -> None:
        if size is None:
            size = len(self._payload(part))
        ctype = self.types(part)
        name = clean_filename(filename, self.leaves, ctype) if filename else None
        self.skipped.append(SkippedPart(self.leaves, ctype, reason, size, name))

    def _is_forward(self, part: Message) -> bool:
        return self.types(part) == "message/rfc822" or (
            self.types.main(part) == "message" and isinstance(part.get_payload(), Message)
        )

    def _forwarded(self, part: Message, texts: list[str], depth: int) -> None:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else payload
        if not isinstance(inner, Message):  # an encoded or broken message: keep it as a file
            self._leaf(part, texts, None, False)
            return
        subject = clean_header(_header(inner, "Subject"), 200) or "(no subject)"
        inner_texts: list[str] = []
        self.walk(inner, inner_texts, depth + 1, subject)
        if inner_texts:
            body = "\n\n".join(inner_texts)
            texts.append(f"---- Forwarded message: {subject} ----\n{body}")

    def _payload(self, part: Message) -> bytes:
        try:
            data = self.blobs.payload(part)
        except Exception:  # noqa: BLE001
            data = None
            self.defects.append("UndecodablePayload")
        return data if isinstance(data, bytes) else b""

    def _attachment(self, part: Message, nested_in: str | None, data: bytes | None = None) -> None:
        if data is None:
            data = self._payload(part)
        ctype = self.types(part)
        name = _safe_filename(part)
        position = len(self.attachments) + 1
        self.attachments.append(
            AttachmentPart(
                position=position,
                filename=clean_filename(name, position, ctype),
                content_type=ctype,
                data=data,
                inline=(part.get_content_disposition() or "") != "attachment",
                nested_in=nested_in,
            )
        )


def read_message(
    raw: bytes,
    sha256: str | None = None,
    *,
    max_depth: int = MAX_NESTING,
    max_parts: int = MAX_PARTS,
) -> tuple[Envelope, list[AttachmentPart]]:
    """Read the headers, body text and attachments of a raw message.

    Every leaf part ends up as body text (all text parts, in order), an attachment,
    or in ``Envelope.skipped`` with its reason. Never raises for malformed input;
    problems are listed in ``Envelope.defects``.
    """
    digest = sha256 or hashlib.sha256(raw).hexdigest()
    blobs = _Blobs(raw)
    parsed = _Parsed(blobs.reduced, lazy=not blobs.spans)
    message = parsed.message
    blobs.decode = parsed.payload
    types = _Types()
    shown = _shown_ids(message, max_parts, types, parsed.payload)
    walker = _Walker(max_depth, max_parts, blobs, shown, types)
    texts: list[str] = []
    walker.walk(message, texts, 0, None)
    body = "\n\n".join(texts)
    message_id, derived = message_id_of(raw, digest)
    sender_name, sender_email = _address(_header(message, "From"))
    _, reply_to = _address(_header(message, "Reply-To"))
    keep = (
        "Auto-Submitted",
        "Return-Path",
        "Precedence",
        "List-Id",
        "List-Unsubscribe",
        "X-Autoreply",
        "X-Autorespond",
        "X-Auto-Response-Suppress",
        "Content-Type",
        "To",
        "In-Reply-To",
        "References",
        "X-Intake-Ack",
    )
    headers = {name: value for name in keep if (value := clean_header(_header(message, name)))}
    envelope = Envelope(
        message_id=message_id,
        message_id_derived=derived,
        sender_email=sender_email,
        sender_name=sender_name,
        reply_to=reply_to,
        subject=clean_header(_header(message, "Subject"), 500),
        sent_at=_sent_at(message),
        received_header_at=_topmost_received(message),
        body_text=unicodedata.normalize("NFC", body),
        headers=headers,
        defects=tuple(dict.fromkeys(walker.defects)),
        skipped=tuple(walker.skipped),
        leaves=walker.leaves,
        body_parts=walker.body_parts,
    )
    return envelope, walker.attachments


_MESSAGE_ID_LINE = re.compile(
    rb"^message-id[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE
)


def message_id_of(raw: bytes, sha256: str) -> tuple[str, bool]:
    """The key Message-ID of a raw message, and whether it had to be derived from the hash."""
    found = sniff_message_id(raw)
    if found:
        return found, False
    return f"<{sha256}@derived.invalid>", True


def sniff_message_id(raw: bytes) -> str:
    """The Message-ID from the header block, read without a full parse (cannot fail).

    Used to key a message before it is stored; :func:`read_message` reads it again
    properly afterwards.
    """
    header_end = re.search(rb"\r?\n\r?\n", raw)
    head = raw[: header_end.start()] if header_end else raw[:65536]
    match = _MESSAGE_ID_LINE.search(head)
    if match is None:
        return ""
    return clean_header(match.group(1).decode("latin-1"), 998)


def decoded_leaves(raw: bytes, limit: int = 200) -> list[bytes]:
    """The decoded payload of every leaf part (at most ``limit``), for looking inside reports."""
    found: list[bytes] = []
    parsed = _Parsed(raw, lazy=True)
    for part in parsed.message.walk():
        if len(found) >= limit:
            break
        if part.is_multipart():
            continue
        try:
            payload = parsed.payload(part)
        except Exception:  # noqa: BLE001, S112 - an undecodable part has nothing to find
            continue
        if isinstance(payload, bytes):
            found.append(payload)
    return found
