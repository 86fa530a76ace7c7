"""Pure helpers: type detection, charset decoding, HTML to text, normalisation, API."""

from __future__ import annotations

import io
import zipfile

import pytest
from parsers_testkit import DOCS

import parsers
from parsers import decode_text, detect_type, html_to_text
from parsers.textnorm import garbage_ratio, normalize_text


def _with_content_type(docx: bytes, main_type: str) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(docx))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "[Content_Types].xml":
                data = data.replace(b"application/vnd.openxmlformats-officedocument."
                                    b"wordprocessingml.document.main+xml", main_type.encode())
            target.writestr(name, data)
    return out.getvalue()


class TestDetectType:
    """detect_type() trusts bytes over names."""

    @pytest.mark.parametrize(("name", "expected"), [
        ("plain.pdf", "application/pdf"),
        ("pdf_named_docx.docx", "application/pdf"),
        ("features.docx",
         "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("housing.odt", "application/vnd.oasis.opendocument.text"),
        ("answers.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("bundle.zip", "application/zip"),
        ("letter.rtf", "application/rtf"),
        ("page.html", "text/html"),
        ("forwarded.eml", "message/rfc822"),
        ("photo.png", "image/png"),
        ("cp1252.txt", "text/plain"),
        ("utf16.txt", "text/plain"),
    ])
    def test_fixture_types(self, name: str, expected: str) -> None:
        """Each fixture is recognised from its content."""
        assert detect_type((DOCS / name).read_bytes(), filename="misleading.bin") == expected

    def test_macro_and_template_documents(self) -> None:
        """DOCM and DOTX are told apart by the package's content types."""
        docx = (DOCS / "features.docx").read_bytes()
        docm = _with_content_type(
            docx, "application/vnd.ms-word.document.macroEnabled.main+xml")
        assert detect_type(docm).endswith("macroEnabled.12")
        template = ("application/vnd.openxmlformats-officedocument.wordprocessingml."
                    "template.main+xml")
        dotx = _with_content_type(docx, template)
        assert detect_type(dotx).endswith("wordprocessingml.template")
        result = parsers.extract(dotx)
        assert result.status is parsers.ParseStatus.OK and "cycle lanes" in result.text

    def test_signatures(self) -> None:
        """TNEF, late %PDF, email headers and unknown binaries."""
        assert detect_type(b"\x78\x9f\x3e\x22\x01\x00") == "application/vnd.ms-tnef"
        assert detect_type(b"\x00" * 500 + b"%PDF-1.4\n") == "application/pdf"
        mail = b"Received: from x\r\nFrom: a@b.c\r\nSubject: hi\r\n\r\nbody"
        assert detect_type(mail) == "message/rfc822"
        assert detect_type(b"\x00\x01\x02\x03" * 10) == "application/octet-stream"
        assert detect_type(b"\x00\x01\x02\x03" * 10, "x.pdf") == "application/pdf"
        assert detect_type(b"just words", "letter.docx").endswith("document")


class TestDecodeText:
    """decode_text() honours valid declared charsets and detects the rest."""

    def test_declared_charset(self) -> None:
        assert decode_text("Zürich".encode("latin-1"), "iso-8859-1") == "Zürich"

    def test_wrong_or_unknown_declared_charset_falls_back(self) -> None:
        text = "Prüfung Eröffnungsbilanz"
        assert decode_text(text.encode("utf-8"), "x-unknown") == text
        assert decode_text(text.encode("utf-8"), "ascii") == text

    def test_detects_cp1252_and_utf16(self) -> None:
        assert "Café" in decode_text((DOCS / "cp1252.txt").read_bytes())
        assert "Zażółć" in decode_text((DOCS / "utf16.txt").read_bytes())


class TestHtmlToText:
    """html_to_text() gives readable text for email bodies."""

    def test_scripts_styles_dropped_entities_decoded(self) -> None:
        html = ("<style>.a{}</style><script>var x=1;</script><p>A &amp; B&nbsp;C</p>"
                "<div>Next<br/>line</div>")
        assert html_to_text(html) == "A & B C\n\nNext\nline"

    def test_table_rows_and_cells(self) -> None:
        html = "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>"
        assert html_to_text(html) == "a\tb\nc\td"

    def test_xml_declaration_and_empty(self) -> None:
        assert html_to_text('<?xml version="1.0" encoding="utf-8"?><p>x</p>') == "x"
        assert html_to_text("") == ""


class TestNormalize:
    """normalize_text() and garbage_ratio()."""

    def test_ligatures_nfc_and_blank_lines(self) -> None:
        assert normalize_text("\ufb01ne\r\n\r\n\r\n\ufb02ow cafe\u0301 ") == "fine\n\nflow café"

    def test_control_characters_and_line_end_spaces_go_tabs_inside_lines_stay(self) -> None:
        text = "a\x00b\x1b \t\nc\td  \n \t \n\n\n\x7fe\x0cf\x0bg\u00adh\ufeff"
        assert normalize_text(text) == "ab\nc\td\n\ne\n\nf\ngh"

    def test_garbage_ratio(self) -> None:
        assert garbage_ratio("(cid:12)(cid:13)ab") == 0.5
        assert garbage_ratio("plain text") == 0.0

    def test_garbage_ratio_counts_exactly_the_undecodable_characters(self) -> None:
        # U+FFFD, private use (BMP U+E000-U+F8FF, planes 15 and 16) count; their
        # neighbours (U+DFFF's side, U+F900, U+FFFC, U+FFFE, U+10FFFE) and typography don't.
        assert garbage_ratio("\ufffd\ue000\uf8ff\U000f0000\U0010fffd") == 1.0
        assert garbage_ratio("\uf900\ufffc\ufffe\U0010fffe\u2019\u00e9") == 0.0
        assert garbage_ratio("ab\u2019\ufffd") == 0.25


def test_public_api_is_pinned() -> None:
    """The names the pipeline relies on are exported, and nothing by accident."""
    expected = {"extract", "ExtractionPool", "ExtractJob", "ExtractResult", "Limits",
                "ParseStatus", "html_to_text", "decode_text", "detect_type", "ParseError",
                "EncryptedDocument", "CorruptDocument", "UnsupportedFormat", "TooLarge",
                "NeedsOcr", "EmptyDocument", "GarbledText", "NestingTooDeep", "ParseTimeout"}
    assert set(parsers.__all__) == expected
    assert all(hasattr(parsers, name) for name in expected)
