"""Detect a file's real type from its bytes; names and declared types are a fallback.

Order: magic numbers (PDF anywhere in the first 1024 bytes, ZIP, OLE2, TNEF, RTF,
images, WordPerfect), then the members of ZIP and OLE2 containers, then sniffing of
HTML, email headers and plain text. Only when the bytes say nothing usable does the
file name or the declared MIME type decide.
"""

from __future__ import annotations

import io
import re
import zipfile

__all__ = [
    "DOC", "DOCM", "DOCX", "DOTM", "DOTX", "EML", "ENCRYPTED_OOXML", "HTML", "MSG",
    "OCTET", "ODT", "PDF", "RTF", "TEXT", "TNEF", "XLSX", "ZIP", "detect_type",
    "type_from_name",
]

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
DOTX = "application/vnd.openxmlformats-officedocument.wordprocessingml.template"
DOCM = "application/vnd.ms-word.document.macroEnabled.12"
DOTM = "application/vnd.ms-word.template.macroEnabled.12"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODT = "application/vnd.oasis.opendocument.text"
ZIP = "application/zip"
DOC = "application/msword"
XLS = "application/vnd.ms-excel"
PPT = "application/vnd.ms-powerpoint"
MSG = "application/vnd.ms-outlook"
ENCRYPTED_OOXML = "application/x-ms-encrypted-ooxml"
OLE = "application/x-ole-storage"
TNEF = "application/vnd.ms-tnef"
RTF = "application/rtf"
HTML = "text/html"
EML = "message/rfc822"
TEXT = "text/plain"
OCTET = "application/octet-stream"
WORDPERFECT = "application/vnd.wordperfect"

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"BM", "image/bmp"),
    (b"\x78\x9f\x3e\x22", TNEF),  # 0x223e9f78 little-endian
    (b"{\\rtf", RTF),
    (b"\xffWPC", WORDPERFECT),
    (b"\x1f\x8b", "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
    (b".snd", "audio/basic"),
    (b"ID3", "audio/mpeg"),
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
)
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_EXTENSIONS = {
    "pdf": PDF, "docx": DOCX, "dotx": DOTX, "docm": DOCM, "dotm": DOTM, "xlsx": XLSX,
    "odt": ODT, "zip": ZIP, "doc": DOC, "msg": MSG, "dat": TNEF, "tnef": TNEF,
    "rtf": RTF, "html": HTML, "htm": HTML, "eml": EML, "txt": TEXT, "csv": TEXT,
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
    "tif": "image/tiff", "tiff": "image/tiff", "xls": XLS, "ppt": PPT, "pptx": PPTX,
}
_CONTENT_TYPES = {
    "application/vnd.ms-word.document.macroEnabled.main+xml": DOCM,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml": DOTX,
    "application/vnd.ms-word.template.macroEnabledTemplate.main+xml": DOTM,
}
_HEADER_LINE = re.compile(rb"^[!-9;-~]{1,76}:[ \t]?\S?")
_EMAIL_HEADERS = (
    b"from", b"received", b"mime-version", b"return-path", b"message-id", b"date",
    b"subject", b"to", b"delivered-to", b"x-", b"content-type", b"reply-to", b"sender",
    b"cc", b"in-reply-to", b"references", b"dkim-signature", b"x-mailer",
)
_HTML_MARKERS = re.compile(
    r"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]|<meta\s|<title>|<div[\s>]"
    r"|<p[\s>]|<table[\s>]|<br\s*/?>",
    re.IGNORECASE,
)


def type_from_name(filename: str | None) -> str | None:
    """MIME type implied by a file name's extension, or None."""
    if not filename or "." not in filename:
        return None
    if filename.lower().endswith("winmail.dat"):
        return TNEF
    return _EXTENSIONS.get(filename.rsplit(".", 1)[1].strip().lower())


def _zip_type(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "word/document.xml" in names or any(n.startswith("word/") for n in names):
                kind = DOCX
                if "[Content_Types].xml" in names:
                    info = archive.getinfo("[Content_Types].xml")
                    if info.file_size < 1_000_000:
                        types = archive.read(info).decode("utf-8", "replace")
                        for marker, mime in _CONTENT_TYPES.items():
                            if marker in types:
                                kind = mime
                return kind
            if "mimetype" in names and archive.getinfo("mimetype").file_size < 200:
                mimetype = archive.read("mimetype").decode("ascii", "replace").strip()
                if mimetype.startswith("application/vnd.oasis.opendocument"):
                    return mimetype
            if "content.xml" in names and "META-INF/manifest.xml" in names:
                return ODT
            if any(n.startswith("xl/") for n in names):
                return XLSX
            if any(n.startswith("ppt/") for n in names):
                return PPTX
            return ZIP
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
            RuntimeError, NotImplementedError, KeyError):
        # Damaged package: the local headers at the front still name the parts.
        head = data[:8192]
        if b"word/" in head:
            return DOCX
        if b"mimetypeapplication/vnd.oasis.opendocument.text" in head:
            return ODT
        if b"xl/" in head:
            return XLSX
        return ZIP


def _readable_zip(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)):
            return True
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return False


def _ole_type(data: bytes) -> str:
    import olefile  # only for old Office files and Outlook items: most mail has none

    try:
        with olefile.OleFileIO(data) as ole:
            streams = {"/".join(entry) for entry in ole.listdir(streams=True, storages=True)}
    except (OSError, ValueError, IndexError, TypeError, KeyError, MemoryError,
            RecursionError, AttributeError, ZeroDivisionError):
        return OLE
    names = {name.lower() for name in streams}
    if "encryptedpackage" in names or "encryptioninfo" in names:
        return ENCRYPTED_OOXML
    if "worddocument" in names:
        return DOC
    if any(name.startswith("__substg1.0_") for name in names):
        return MSG
    if "workbook" in names or "book" in names:
        return XLS
    if "powerpoint document" in names:
        return PPT
    return OLE


def _sniff_text(head: bytes) -> str | None:
    """Decode the first bytes of a file if they look like text at all."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"),
                       (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):
            return head[len(bom):].decode(codec, "ignore")
    if len(head) >= 4 and head[1:4:2] == b"\x00\x00" and head[0:4:2].count(0) == 0:
        return head.decode("utf-16-le", "ignore")
    if b"\x00" in head:
        return None
    controls = sum(1 for byte in head if byte < 9 or 13 < byte < 32)
    if controls > len(head) * 0.05:
        return None
    return head.decode("latin-1")


def _looks_like_email(text: str) -> bool:
    lines = text.lstrip("\r\n").splitlines()[:30]
    if not lines:
        return False
    if lines[0].startswith("From ") and len(lines) > 1:
        lines = lines[1:]
    known = 0
    for line in lines:
        if not line.strip():
            break
        if line[0] in " \t":
            continue
        raw = line.encode("latin-1", "replace")
        if not _HEADER_LINE.match(raw):
            return False
        name = raw.split(b":", 1)[0].lower()
        if any(name == h or (h.endswith(b"-") and name.startswith(h)) for h in _EMAIL_HEADERS):
            known += 1
    return known >= 2 or (known >= 1 and len(lines) <= 3)


def detect_type(data: bytes, filename: str | None = None,
                declared_type: str | None = None) -> str:
    """Return the MIME type of ``data`` judged from its content.

    ``filename`` and ``declared_type`` are consulted only when the content gives
    no answer (``application/octet-stream``).
    """
    if b"%PDF-" in data[:1024]:
        return PDF
    if data.startswith(_ZIP_MAGICS):
        kind = _zip_type(data)
        claimed = _claimed(filename, declared_type)
        if kind == ZIP and claimed in _ZIP_FORMATS and not _readable_zip(data):
            return claimed  # a damaged package: let its own reader say so
        return kind
    if data.startswith(_OLE_MAGIC):
        return _ole_type(data)
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            if mime == "image/bmp" and len(data) < 26:
                continue
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] in (b"WAVE", b"AVI "):
        return "audio/wav" if data[8:12] == b"WAVE" else "video/x-msvideo"
    claimed = _claimed(filename, declared_type)
    if claimed is not None and claimed.startswith(("audio/", "video/")):
        # Sound and video are never text, however their bytes happen to look:
        # headerless mu-law audio (audio/basic) passes for Latin-1 text.
        return claimed
    text = _sniff_text(data[:4096])
    if text is not None and data:
        stripped = text.lstrip()
        if stripped.startswith("{\\rtf"):
            return RTF
        if _looks_like_email(text):
            return EML
        if _HTML_MARKERS.search(stripped[:1024]) and stripped.startswith("<"):
            return HTML
        # Plain text that claims to be a binary format is a broken file of that
        # format (its reader will say so); text that claims email or HTML is that.
        claimed = _claimed(filename, declared_type)
        if claimed in _BINARY_CLAIMS or claimed in (EML, HTML):
            return claimed
        return TEXT
    return _claimed(filename, declared_type) or OCTET


_ZIP_FORMATS = frozenset({DOCX, DOTX, DOCM, DOTM, XLSX, ODT, PPTX})
_BINARY_CLAIMS = frozenset({PDF, DOCX, DOTX, DOCM, DOTM, XLSX, ODT, DOC, MSG, TNEF, ZIP})


def _claimed(filename: str | None, declared_type: str | None) -> str | None:
    declared = (declared_type or "").split(";", 1)[0].strip().lower()
    claimed = type_from_name(filename) or declared
    return claimed if claimed and claimed != OCTET else None
