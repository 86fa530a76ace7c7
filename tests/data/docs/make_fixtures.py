"""Write the golden fixtures in this folder: small files of each format, made by hand.

Run ``python tests/data/docs/make_fixtures.py`` from the repository root; it rewrites
every fixture deterministically. Each ``<case>.<ext>`` has either ``<case>.txt`` (the
exact expected text; status ok) or ``<case>.expected.json`` (status, substrings).
The PDFs come from a minimal PDF writer below (including RC4 encryption), the Office
and OpenDocument files are zipped XML written here, so no office suite is needed.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile
import zlib
from email.message import EmailMessage
from pathlib import Path

HERE = Path(__file__).resolve().parent
_STAMP = (2024, 1, 1, 0, 0, 0)


# ---------------------------------------------------------------- PDF writer
_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def _rc4(key: bytes, data: bytes) -> bytes:
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(byte ^ state[(state[i] + state[j]) % 256])
    return bytes(out)


def _padded(password: str) -> bytes:
    return (password.encode("latin-1") + _PAD)[:32]


def make_pdf(objects: list[bytes], *, user_pw: str | None = None, owner_pw: str = "") -> bytes:
    """Assemble a PDF from object bodies (object 1 is the catalog); RC4-40 if asked."""
    file_id = hashlib.md5(b"".join(objects)).digest()
    key = b""
    extra: list[bytes] = []
    if user_pw is not None:
        permissions = -17  # everything but copying text out
        owner_key = hashlib.md5(_padded(owner_pw or user_pw)).digest()[:5]
        o_entry = _rc4(owner_key, _padded(user_pw))
        key = hashlib.md5(_padded(user_pw) + o_entry + struct.pack("<i", permissions)
                          + file_id).digest()[:5]
        u_entry = _rc4(key, _PAD)
        extra.append(b"<< /Filter /Standard /V 1 /R 2 /O <" + o_entry.hex().encode()
                     + b"> /U <" + u_entry.hex().encode() + b"> /P "
                     + str(permissions).encode() + b" >>")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects + extra, 1):
        if key and number <= len(objects):
            body = _encrypt_object(body, key, number)
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    trailer = b"/Size %d /Root 1 0 R /ID [<%s> <%s>]" % (
        len(offsets) + 1, file_id.hex().encode(), file_id.hex().encode())
    if extra:
        trailer += b" /Encrypt %d 0 R" % len(offsets)
    out += b"trailer\n<< " + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def _encrypt_object(body: bytes, key: bytes, number: int) -> bytes:
    object_key = hashlib.md5(key + struct.pack("<I", number)[:3] + b"\x00\x00").digest()[:10]
    if b"stream\n" in body:
        head, rest = body.split(b"stream\n", 1)
        data = rest.rsplit(b"\nendstream", 1)[0]
        data = _rc4(object_key, data)
        head = head.replace(b"/Length %d" % len(data), b"/Length %d" % len(data))
        return head + b"stream\n" + data + b"\nendstream"
    return body


def _stream(content: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(content), extra) + content + b"\nendstream"


def _text_page(content: bytes, font: bytes = b"<< /Type /Font /Subtype /Type1 "
               b"/BaseFont /Helvetica /Encoding /WinAnsiEncoding >>") -> list[bytes]:
    return [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        _stream(content),
        font,
    ]


def _lines(*items: tuple[float, float, str]) -> bytes:
    ops = []
    for x, y, text in items:
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"BT /F1 12 Tf {x} {y} Td ({escaped}) Tj ET")
    return "\n".join(ops).encode("cp1252")


PLAIN_LINES = _lines(
    (72, 720, "Response to the consultation on local transport."),
    (72, 706, "We support the proposal for more buses."),
    (72, 650, "Second paragraph: the caf\xe9 on Mill Road needs a bus stop."),
)
PLAIN_TEXT = ("Response to the consultation on local transport.\n"
              "We support the proposal for more buses.\n\n"
              "Second paragraph: the caf\u00e9 on Mill Road needs a bus stop.")


def pdf_fixtures() -> dict[str, bytes | str]:
    files: dict[str, bytes | str] = {}
    files["plain.pdf"] = make_pdf(_text_page(PLAIN_LINES))
    files["plain.txt"] = PLAIN_TEXT
    rows = [("Item", "Cost", "Priority"), ("Roads", "100", "High"), ("Buses", "250", "Low")]
    cells = [(72 + 140 * c, 700 - 20 * r, value)
             for r, row in enumerate(rows) for c, value in enumerate(row)]
    files["table.pdf"] = make_pdf(_text_page(_lines((72, 740, "Budget table"), *cells)))
    files["table.txt"] = "Budget table\n\n" + "\n".join("\t".join(row) for row in rows)
    files["owner_password.pdf"] = make_pdf(_text_page(PLAIN_LINES), user_pw="",
                                           owner_pw="owner-secret")
    files["owner_password.txt"] = PLAIN_TEXT
    files["user_password.pdf"] = make_pdf(_text_page(PLAIN_LINES), user_pw="letmein",
                                          owner_pw="owner-secret")
    files["user_password.expected.json"] = _expect("encrypted", ["password"])
    pixels = bytes(range(0, 256, 4))
    image = _stream(pixels, b"/Type /XObject /Subtype /Image /Width 8 /Height 8 "
                    b"/ColorSpace /DeviceGray /BitsPerComponent 8 ")
    files["scanned.pdf"] = make_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /XObject << /Im1 5 0 R >> >> >>",
        _stream(b"q 500 0 0 700 50 50 cm /Im1 Do Q"),
        image,
    ])
    files["scanned.expected.json"] = _expect("needs_ocr", ["OCR"])
    cid_font = (b"<< /Type /Font /Subtype /Type0 /BaseFont /NoMap /Encoding /Identity-H "
                b"/DescendantFonts [6 0 R] >>")
    objects = _text_page(b"BT /F1 12 Tf 72 720 Td <" + b"".join(
        b"%04x" % (40 + i % 26) for i in range(60)) + b"> Tj ET", cid_font)
    objects.append(b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /NoMap "
                   b"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) "
                   b"/Supplement 0 >> /DW 600 /FontDescriptor 7 0 R >>")
    objects.append(b"<< /Type /FontDescriptor /FontName /NoMap /Flags 4 "
                   b"/FontBBox [0 0 600 700] /ItalicAngle 0 /Ascent 700 /Descent 0 "
                   b"/CapHeight 700 /StemV 80 >>")
    files["cid_garbled.pdf"] = make_pdf(objects)
    files["cid_garbled.expected.json"] = _expect("garbled", [], ["(cid:"])
    files["pdf_named_docx.docx"] = files["plain.pdf"]
    files["pdf_named_docx.expected.json"] = _expect(
        "ok", ["We support the proposal"], detected_type="application/pdf")
    return files


def _expect(status: str, contains: list[str], not_contains: list[str] | None = None,
            **extra: str) -> str:
    spec = {"status": status, "contains": contains, "not_contains": not_contains or []}
    spec.update(extra)
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------- zip packages
def _zip(members: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            data = content.encode("utf-8") if isinstance(content, str) else content
            info = zipfile.ZipInfo(name, _STAMP)
            info.compress_type = zipfile.ZIP_STORED if name == "mimetype" else \
                zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
_NS = (f'{_W} xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" '
       'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
       'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
       'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
       'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
       'xmlns:v="urn:schemas-microsoft-com:vml" mc:Ignorable="wps"')
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _p(*runs: str) -> str:
    return "<w:p>" + "".join(runs) + "</w:p>"


def _r(text: str) -> str:
    return f'<w:r><w:t xml:space="preserve">{text}</w:t></w:r>'


def make_docx(body: str, doctype: str = "", footnote: bool = True) -> bytes:
    """A Word package with header, footer and (optionally) footnotes parts."""
    main = "application/vnd.openxmlformats-officedocument.wordprocessingml"
    types = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/word/document.xml" ContentType="{main}.document.main+xml"/>'
        f'<Override PartName="/word/header1.xml" ContentType="{main}.header+xml"/>'
        f'<Override PartName="/word/footer1.xml" ContentType="{main}.footer+xml"/>'
        f'<Override PartName="/word/footnotes.xml" ContentType="{main}.footnotes+xml"/>'
        "</Types>")
    rels = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
            f'Type="{_REL}/officeDocument" Target="word/document.xml"/></Relationships>')
    doc_rels = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
                'openxmlformats.org/package/2006/relationships">'
                f'<Relationship Id="rId1" Type="{_REL}/header" Target="header1.xml"/>'
                f'<Relationship Id="rId2" Type="{_REL}/footer" Target="footer1.xml"/>'
                + (f'<Relationship Id="rId3" Type="{_REL}/footnotes" Target="footnotes.xml"/>'
                   if footnote else "") + "</Relationships>")
    document = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>{doctype}'
                f"<w:document {_NS}><w:body>{body}<w:sectPr>"
                '<w:headerReference w:type="default" r:id="rId1"/>'
                '<w:footerReference w:type="default" r:id="rId2"/></w:sectPr>'
                "</w:body></w:document>")
    header = f'<w:hdr {_W}>{_p(_r("Consultation response header"))}</w:hdr>'
    footer = f'<w:ftr {_W}>{_p(_r("Page footer text"))}</w:ftr>'
    notes = (f'<w:footnotes {_W}><w:footnote w:type="separator" w:id="-1">'
             '<w:p><w:r><w:separator/></w:r></w:p></w:footnote>'
             f'<w:footnote w:id="1">{_p(_r("Footnote: source is the 2021 survey."))}'
             "</w:footnote></w:footnotes>")
    members: dict[str, bytes | str] = {
        "[Content_Types].xml": types, "_rels/.rels": rels,
        "word/_rels/document.xml.rels": doc_rels, "word/document.xml": document,
        "word/header1.xml": header, "word/footer1.xml": footer}
    if footnote:
        members["word/footnotes.xml"] = notes
    return _zip(members)


def _textbox(text: str) -> str:
    inner = f"<w:txbxContent>{_p(_r(text))}</w:txbxContent>"
    return ("<w:r><mc:AlternateContent><mc:Choice Requires=\"wps\"><w:drawing><wp:anchor>"
            "<a:graphic><a:graphicData><wps:wsp><wps:txbx>" + inner +
            "</wps:txbx></wps:wsp></a:graphicData></a:graphic></wp:anchor></w:drawing>"
            "</mc:Choice><mc:Fallback><w:pict><v:shape><v:textbox>" + inner +
            "</v:textbox></v:shape></w:pict></mc:Fallback></mc:AlternateContent></w:r>")


def docx_fixtures() -> dict[str, bytes | str]:
    files: dict[str, bytes | str] = {}
    table = ("<w:tbl>" + "".join(
        "<w:tr>" + "".join(f"<w:tc>{_p(_r(cell))}</w:tc>" for cell in row) + "</w:tr>"
        for row in (("Question", "Answer"), ("Q1", "Agree"), ("Q2", "Disagree")))
        + "</w:tbl>")
    body = (
        _p(_r("Dear Council,"))
        + _p(_r("I write about "), '<w:ins w:id="1" w:author="A">', _r("the new "),
             "</w:ins>", '<w:del w:id="2" w:author="A"><w:r><w:delText>old </w:delText>'
             "</w:r></w:del>", _r("cycle lanes."),
             '<w:r><w:footnoteReference w:id="1"/></w:r>')
        + table
        + _p(_r("Text before the box."), _textbox("Boxed note: please reply by email."))
        + _p(_r("Yours,"), "<w:r><w:br/></w:r>", _r("A. Resident"))
    )
    files["features.docx"] = make_docx(body)
    files["features.txt"] = (
        "Consultation response header\n\nDear Council,\n\nI write about the new cycle "
        "lanes.\n\nQuestion\tAnswer\nQ1\tAgree\nQ2\tDisagree\n\nText before the box."
        "\n\nBoxed note: please reply by email.\n\nYours,\nA. Resident\n\n"
        "Footnote: source is the 2021 survey.\n\nPage footer text")
    files["empty.docx"] = b""
    files["empty.expected.json"] = _expect("empty", [])
    whole = files["features.docx"]
    assert isinstance(whole, bytes)
    files["truncated.docx"] = whole[: len(whole) * 2 // 3]
    files["truncated.expected.json"] = _expect("corrupt", ["damaged"])
    files["bomb.docx"] = _declare_huge(whole, "word/document.xml", 3 * 1024 ** 3)
    files["bomb.expected.json"] = _expect("too_large", ["bomb"])
    doctype = '<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    files["xxe.docx"] = make_docx(_p(_r("Before entity")) + _p(_r("&xxe;")) +
                                  _p(_r("After entity")), doctype, footnote=False)
    files["xxe.expected.json"] = _expect("ok", ["Before entity", "After entity"],
                                         ["root:", "/bin/"])
    return files


def _declare_huge(package: bytes, member: str, size: int) -> bytes:
    """Patch a member's declared uncompressed size (local and central headers)."""
    data = bytearray(package)
    name = member.encode()
    local = data.find(b"PK\x03\x04" + b"\x00" * 0)
    while local != -1:
        name_length = struct.unpack_from("<H", data, local + 26)[0]
        if data[local + 30: local + 30 + name_length] == name:
            struct.pack_into("<I", data, local + 22, size & 0xFFFFFFFF)
        local = data.find(b"PK\x03\x04", local + 4)
    central = data.find(b"PK\x01\x02")
    while central != -1:
        name_length = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46: central + 46 + name_length] == name:
            struct.pack_into("<I", data, central + 24, size & 0xFFFFFFFF)
        central = data.find(b"PK\x01\x02", central + 4)
    return bytes(data)


def odf_fixtures() -> dict[str, bytes | str]:
    ns = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
          'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
          'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
          'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"')
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ns}>'
        "<office:body><office:text>"
        "<text:tracked-changes><text:changed-region><text:deletion><text:p>Deleted words"
        "</text:p></text:deletion></text:changed-region></text:tracked-changes>"
        '<text:h text:outline-level="1">Response on housing</text:h>'
        "<text:p>We  <text:s/>agree<text:tab/>with the plan"
        '<text:note text:note-class="footnote"><text:note-citation>1</text:note-citation>'
        "<text:note-body><text:p>See appendix A.</text:p></text:note-body></text:note>"
        ".</text:p>"
        "<text:list><text:list-item><text:p>First point</text:p></text:list-item>"
        "<text:list-item><text:p>Second point</text:p></text:list-item></text:list>"
        "<table:table><table:table-column/><table:table-row><table:table-cell>"
        "<text:p>Area</text:p></table:table-cell><table:table-cell><text:p>Homes</text:p>"
        "</table:table-cell></table:table-row><table:table-row><table:table-cell>"
        "<text:p>North</text:p></table:table-cell><table:table-cell><text:p>120</text:p>"
        "</table:table-cell></table:table-row></table:table>"
        "</office:text></office:body></office:document-content>")
    styles = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-styles {ns}>'
              "<office:master-styles><style:master-page><style:header><text:p>Housing "
              "header</text:p></style:header></style:master-page></office:master-styles>"
              "</office:document-styles>")
    manifest = ('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest='
                '"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry '
                'manifest:full-path="/" manifest:media-type="application/vnd.oasis.'
                'opendocument.text"/></manifest:manifest>')
    odt = _zip({"mimetype": "application/vnd.oasis.opendocument.text",
                "content.xml": content, "styles.xml": styles,
                "META-INF/manifest.xml": manifest})
    return {"housing.odt": odt,
            "housing.txt": "Housing header\n\nResponse on housing\n\nWe  agree\twith the "
                           "plan.\n\nSee appendix A.\n\nFirst point\n\nSecond point\n\n"
                           "Area\tHomes\nNorth\t120"}


def xlsx_fixture() -> dict[str, bytes | str]:
    s = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    r = f'xmlns:r="{_REL}"'
    files = {
        "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.'
        'openxmlformats.org/package/2006/content-types"><Default Extension="xml" '
        'ContentType="application/xml"/></Types>',
        "xl/workbook.xml": f'<workbook {s} {r}><sheets><sheet name="Answers" sheetId="1" '
                           'r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<Relationships xmlns="http://schemas.openxmlformats.'
        'org/package/2006/relationships"><Relationship Id="rId1" Type="x" '
        'Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/sharedStrings.xml": f"<sst {s}><si><t>Question</t></si><si><t>Score</t></si>"
                                "<si><r><t>Parks </t></r><r><t>and trees</t></r></si></sst>",
        "xl/worksheets/sheet1.xml": f'<worksheet {s}><sheetData><row r="1"><c r="A1" t="s">'
        '<v>0</v></c><c r="B1" t="s"><v>1</v></c></row><row r="2"><c r="A2" t="s"><v>2</v>'
        '</c><c r="C2"><v>4.5</v></c></row></sheetData></worksheet>',
    }
    return {"answers.xlsx": _zip(files),
            "answers.txt": "Sheet: Answers\nQuestion\tScore\nParks and trees\t\t4.5"}


# ---------------------------------------------------------------- text formats
def text_fixtures() -> dict[str, bytes | str]:
    files: dict[str, bytes | str] = {}
    files["letter.rtf"] = (
        rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss Arial;}{\f1\fcharset204 "
        rb"Arial Cyr;}}{\colortbl;\red0\green0\blue0;}{\info{\title Hidden title}}"
        rb"{\*\generator Hand;}\f0 Caf\'e9 opening hours\par "
        rb"Price \u8364? 5 and a {\f1 \'cf\'f0\'e8\'e2\'e5\'f2}\par "
        rb"\trowd\cellx1000\cellx2000 Day\cell Hours\cell\row"
        rb"\trowd\cellx1000\cellx2000 Mon\cell 9-5\cell\row}")
    files["letter.txt"] = ("Caf\u00e9 opening hours\n\nPrice \u20ac 5 and a "
                           "\u041f\u0440\u0438\u0432\u0435\u0442\n\nDay\tHours\nMon\t9-5")
    files["page.html"] = (
        b"<!DOCTYPE html><html><head><title>Ignored</title><style>p{color:red}</style>"
        b"<script>alert('x')</script></head><body><h1>Our view</h1><p>Fish &amp; chips "
        b"&eacute;t&eacute; &#8211; fine.</p><ul><li>One</li><li>Two</li></ul><table><tr>"
        b"<th>Ward</th><th>Votes</th></tr><tr><td>East</td><td>12</td></tr></table>"
        b"<p>Line<br>break</p></body></html>")
    files["page.txt"] = ("Our view\n\nFish & chips \u00e9t\u00e9 \u2013 fine.\n\nOne\nTwo"
                         "\n\nWard\tVotes\nEast\t12\n\nLine\nbreak")
    sample = ("Caf\u00e9 cr\u00e8me \u2013 \u201cquoted\u201d na\u00efve r\u00e9sum\u00e9 "
              "for the consultation \u2018response\u2019 \u2026 \u00a3 price, \u00c9t\u00e9")
    files["cp1252.txt"] = sample.encode("cp1252")
    files["cp1252.expected.json"] = _expect("ok", [sample.replace("\u00a0", " ")])
    files["utf16.txt"] = "\ufeffZa\u017c\u00f3\u0142\u0107 g\u0119\u015bl\u0105 ja\u017a\u0144 " \
        "\u2014 UTF-16 text".encode("utf-16-le")
    files["utf16.expected.json"] = _expect("ok", ["Za\u017c\u00f3\u0142\u0107 g\u0119\u015bl"
                                                  "\u0105 ja\u017a\u0144"])
    png = _png()
    files["photo.png"] = png
    files["photo.expected.json"] = _expect("needs_ocr", ["OCR"])
    return files


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + bytes([x * 60 for x in range(4)]) for _ in range(4))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def container_fixtures(docx: bytes, pdf: bytes) -> dict[str, bytes | str]:
    files: dict[str, bytes | str] = {}
    message = EmailMessage()
    message["From"] = "Resident <resident@example.org>"
    message["To"] = "consultation@example.gov"
    message["Subject"] = "My response"
    message["Date"] = "Mon, 01 Jan 2024 10:00:00 +0000"
    message.set_content("Please find my response attached.\n")
    message.add_attachment(docx, maintype="application", subtype="octet-stream",
                           filename="response.docx")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="map.pdf")
    message.set_boundary("==fixture-boundary==")
    files["forwarded.eml"] = message.as_bytes()
    files["forwarded.expected.json"] = _expect(
        "ok", ["Subject: My response", "Please find my response attached.",
               "----- response.docx -----", "I write about the new cycle lanes.",
               "----- map.pdf -----", "We support the proposal for more buses."])
    files["bundle.zip"] = _zip({"letters/response.docx": docx, "__MACOSX/._x": b"junk"})
    files["bundle.expected.json"] = _expect(
        "ok", ["----- letters/response.docx -----", "Q1\tAgree"], ["junk"])
    nested = _zip({"deepest.txt": "Too deep to read"})
    for level in range(11):  # deeper than the default max_nesting_depth (10)
        nested = _zip({f"level{level}.zip": nested})
    files["nested.zip"] = nested
    files["nested.expected.json"] = _expect("too_large", ["nested"], ["Too deep to read"])
    return files


def all_fixtures() -> dict[str, bytes]:
    """Every fixture file, by name, as bytes."""
    files: dict[str, bytes | str] = {}
    files.update(pdf_fixtures())
    files.update(docx_fixtures())
    files.update(odf_fixtures())
    files.update(xlsx_fixture())
    files.update(text_fixtures())
    docx, pdf = files["features.docx"], files["plain.pdf"]
    assert isinstance(docx, bytes) and isinstance(pdf, bytes)
    files.update(container_fixtures(docx, pdf))
    return {name: content.encode("utf-8") if isinstance(content, str) else content
            for name, content in files.items()}


# ---------------------------------------------------------------- made at test time
def slow_pdf(operators: int = 200_000) -> bytes:
    """One page whose content stream holds many text operators: slow in any parser."""
    ops = b"\n".join(b"BT /F1 1 Tf %d %d Td (x) Tj ET" % (i % 600, (i // 600) % 790)
                     for i in range(operators))
    return make_pdf(_text_page(ops))


def long_pdf(pages: int) -> bytes:
    """A text PDF of ``pages`` pages, each with a few sentences."""
    count = pages
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(count)).encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % count]
    font_number = 3 + 2 * count
    for page in range(count):
        text = _lines(*[(72, 720 - 16 * line, f"Page {page + 1}, line {line + 1}: we ask "
                         "the council to keep the library open on Saturdays.")
                        for line in range(30)])
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents "
                       b"%d 0 R /Resources << /Font << /F1 %d 0 R >> >> >>"
                       % (4 + 2 * page, font_number))
        objects.append(_stream(text))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                   b"/Encoding /WinAnsiEncoding >>")
    return make_pdf(objects)


def inflating_docx(megabytes: int) -> bytes:
    """A real decompression bomb: document.xml inflates to ``megabytes`` MB."""
    buffer = io.BytesIO()
    chunk = b"<w:p><w:r><w:t>" + b"A" * 1_000_000 + b"</w:t></w:r></w:p>"
    template = zipfile.ZipFile(io.BytesIO(make_docx("", footnote=False)))
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in template.namelist():
            if name != "word/document.xml":
                archive.writestr(name, template.read(name))
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            member.write(f"<w:document {_NS}><w:body>".encode())
            for _ in range(megabytes):
                member.write(chunk)
            member.write(b"</w:body></w:document>")
    return buffer.getvalue()


def main() -> None:
    for name, data in sorted(all_fixtures().items()):
        assert len(data) < 50_000, name
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
