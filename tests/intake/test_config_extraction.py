"""[extraction] and [ocr]: the PDF engine, OCR languages and page timeout reach the readers."""

from __future__ import annotations

import tomllib

import pytest

from intake.config import parse_settings
from intake.errors import ConfigError

BASE = """
[consultation]
name = "Keep it Local"
deadline = 2018-07-27T23:59:59

[maildir]
path = "inbox"
"""


def _limits(extra: str):  # type: ignore[no-untyped-def]
    return parse_settings(tomllib.loads(BASE + extra), {}).limits.parser_limits()


def test_defaults() -> None:
    """PDFium with pdfminer behind it, OCR off, English, 30 s a page."""
    limits = _limits("")
    assert (limits.pdf_engine, limits.ocr_enabled, limits.ocr_languages,
            limits.ocr_page_timeout_s) == ("auto", False, "eng", 30.0)


def test_values_reach_the_parsers() -> None:
    """Each key ends up in the Limits the extraction workers get."""
    limits = _limits('[extraction]\npdf_engine = "pdfminer"\n'
                     '[ocr]\nenabled = true\nlanguages = "eng+cym"\npage_timeout_s = 12\n')
    assert (limits.pdf_engine, limits.ocr_enabled, limits.ocr_languages,
            limits.ocr_page_timeout_s) == ("pdfminer", True, "eng+cym", 12.0)


@pytest.mark.parametrize(("extra", "key"), [
    ('[extraction]\npdf_engine = "poppler"\n', "extraction.pdf_engine"),
    ("[extraction]\nengine = 1\n", "extraction.engine"),
    ('[ocr]\nlanguages = "eng; rm -rf /"\n', "ocr.languages"),
    ("[ocr]\npage_timeout_s = 0\n", "ocr.page_timeout_s"),
    ("[ocr]\nlanguage = \"eng\"\n", "ocr.language"),
    ('[limits]\npdf_engine = "auto"\n', "limits.pdf_engine"),
])
def test_errors_name_the_key(extra: str, key: str) -> None:
    """A bad value or an unknown key is refused with its name."""
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        _limits(extra)
