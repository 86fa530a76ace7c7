"""Generated documents for the benchmarks: text PDFs and DOCX files of a chosen size.

The PDF writer is deliberately minimal: N pages of Helvetica text, a correct xref
table, and (to reach a target size) one uncompressed padding stream, as a real
PDF carries embedded images or fonts. Every document holds a fixed-width stamp
(``RESP-000000``) that :func:`stamp` replaces per message, so one cached template
gives any number of byte-different copies.
"""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zipfile
import zlib
from pathlib import Path

__all__ = ["STAMP", "docx_template", "pdf_template", "stamp", "stamp_docx"]

STAMP = b"RESP-000000"
CACHE = Path(__file__).resolve().with_name(".cache")

_WORDS = (
    "the council should keep the library open longer on weekdays and weekends because "
    "residents rely on it for study work and community groups we also ask that the "
    "consultation considers bus routes parking housing supply local shops schools green "
    "spaces cycling lanes flood defences and the cost of living for older people families "
    "and young workers in the town centre and surrounding villages evidence attached shows "
    "survey results from members meetings held in march april and may"
).split()


def _sentences(rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 14))]
        out.append(" ".join(words).capitalize() + ".")
    return out


def _cached(name: str, make: callable) -> bytes:  # type: ignore[valid-type]
    path = CACHE / name
    if path.exists():
        return path.read_bytes()
    data: bytes = make()
    CACHE.mkdir(exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return data


# --- PDF ------------------------------------------------------------------------------


def _pdf_lines(rng: random.Random, page: int) -> list[str]:
    lines: list[str] = []
    if page == 1:
        lines += [f"Consultation response {STAMP.decode()}", ""]
    text = " ".join(_sentences(rng, 40))
    line = ""
    for word in text.split():
        if len(line) + len(word) + 1 > 88:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
        if len(lines) >= 52:
            break
    return lines


def _stream(data: bytes) -> bytes:
    return b"<< /Length " + str(len(data)).encode() + b" >>\nstream\n" + data + b"\nendstream"


def _make_pdf(pages: int, size: int, seed: int) -> bytes:
    rng = random.Random(seed)  # noqa: S311 - test data
    objects: list[bytes] = []  # object n is objects[n - 1]
    page_ids = [4 + 2 * i for i in range(pages)]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{pid} 0 R" for pid in page_ids).encode()
    objects.append(
        b"<< /Type /Pages /Kids [" + kids + b"] /Count " + str(pages).encode() + b" >>"
    )
    objects.append(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    for number in range(1, pages + 1):
        ops = [b"BT /F1 10 Tf 13 TL 56 790 Td"]
        for text in _pdf_lines(rng, number):
            ops.append(b"(" + text.encode("latin-1") + b") Tj T*")
        ops.append(b"ET")
        content = b"\n".join(ops)
        content_id = page_ids[number - 1] + 1
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents "
            + str(content_id).encode()
            + b" 0 R >>"
        )
        objects.append(_stream(content))
    # Padding: an embedded stream nothing draws (as an unused image or font would be).
    body_size = sum(len(o) + 20 for o in objects) + 200
    pad = max(0, size - body_size - 40 * (len(objects) + 1) - 100)
    if pad:
        blob = rng.randbytes(pad)
        objects.append(_stream(blob))
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, obj in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(f"{n} 0 obj\n".encode() + obj + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def pdf_template(pages: int, size: int, seed: int) -> bytes:
    """A cached PDF of ``pages`` text pages and about ``size`` bytes."""
    return _cached(f"pdf-{pages}p-{size}-{seed}.pdf", lambda: _make_pdf(pages, size, seed))


# --- DOCX -----------------------------------------------------------------------------


def _png(width: int, height: int, rng: random.Random) -> bytes:
    """An RGB PNG of noise, stored uncompressed (its size is about 3 * width * height)."""
    row = 3 * width
    raw = b"".join(b"\x00" + rng.randbytes(row) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = chunk(b"IDAT", zlib.compress(raw, 0))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + pixels + chunk(b"IEND", b"")


def _make_docx(pages: int, size: int, seed: int) -> bytes:
    import docx  # python-docx
    from docx.shared import Inches

    rng = random.Random(seed)  # noqa: S311 - test data
    document = docx.Document()
    document.add_heading("Response to the consultation", level=1)
    document.add_paragraph(f"Reference of the respondent: {STAMP.decode()}")
    for _ in range(pages):
        for _ in range(6):
            document.add_paragraph(" ".join(_sentences(rng, 6)))
    buffer = io.BytesIO()
    document.save(buffer)
    missing = size - len(buffer.getvalue())
    if missing > 2000:
        width = 400
        height = max(1, missing // (3 * width + 1))
        document.add_picture(io.BytesIO(_png(width, height, rng)), width=Inches(4))
        buffer = io.BytesIO()
        document.save(buffer)
    return buffer.getvalue()


def docx_template(pages: int, size: int, seed: int) -> bytes:
    """A cached DOCX of about ``pages`` pages of text and about ``size`` bytes."""
    return _cached(f"docx-{pages}p-{size}-{seed}.docx", lambda: _make_docx(pages, size, seed))


# --- stamping ---------------------------------------------------------------------------


def _code(number: int) -> bytes:
    return f"RESP-{number % 1_000_000:06d}".encode()


def stamp(pdf: bytes, number: int) -> bytes:
    """The PDF with its stamp replaced by ``number`` (same length: the xref stays valid)."""
    return pdf.replace(STAMP, _code(number), 1)


def stamp_docx(document: bytes, number: int) -> bytes:
    """The DOCX with its stamp replaced; media is stored as-is, XML is re-deflated."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(document)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "word/document.xml":
                data = data.replace(STAMP, _code(number), 1)
            media = info.filename.startswith("word/media/")
            method = zipfile.ZIP_STORED if media else zipfile.ZIP_DEFLATED
            target.writestr(info.filename, data, method)
    return out.getvalue()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
