"""Outlook's winmail.dat (TNEF) with tnefparse: body text plus attachments as parts.

The body is taken from the plain body, else the HTML body, else the (decompressed)
RTF body. Attachments are extracted recursively through the registry.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from tnefparse import TNEF

from parsers.charset import decode_text
from parsers.errors import CorruptDocument
from parsers.html import decode_html, html_to_text
from parsers.rtf import rtf_to_text
from parsers.versions import package_parser

if TYPE_CHECKING:
    from parsers.context import ExtractContext, Extraction

__all__ = ["PARSER", "extract_tnef"]

PARSER = package_parser("tnefparse")


def extract_tnef(data: bytes, ctx: ExtractContext) -> Extraction:
    """Extract a TNEF stream (winmail.dat)."""
    from parsers.context import Extraction

    try:
        tnef = TNEF(data, do_checksum=False)
        attachments = [(a.long_filename() or a.name or None, a.data) for a in tnef.attachments]
        body, html, rtf = tnef.body, tnef.htmlbody, tnef.rtfbody
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, struct.error,
            UnicodeError, OverflowError, EOFError) as exc:
        raise CorruptDocument("This winmail.dat (Outlook TNEF) attachment is damaged and "
                              "could not be read; please resend without Outlook's rich "
                              "text format.") from exc
    text = ""
    if body:
        text = body if isinstance(body, str) else decode_text(body)
    elif html:
        text = html_to_text(html if isinstance(html, str) else decode_html(html))
    elif rtf:
        text = rtf_to_text(rtf if isinstance(rtf, bytes) else rtf.encode("latin-1", "replace"))
    found = Extraction(text=text)
    for name, payload in attachments:
        ctx.check_time(" while reading the attachments")
        raw = payload if isinstance(payload, bytes) else bytes(payload or b"")
        found.parts.append(ctx.child(raw, name, None))
    return found
