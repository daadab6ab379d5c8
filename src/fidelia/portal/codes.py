"""A code as the till reads it: a QR code (segno) and a Code 128 barcode (python-barcode),
both drawn here as SVG and embedded as data URIs (no network, no file written)."""

from __future__ import annotations

import base64
import io
from functools import lru_cache

import barcode  # type: ignore[import-untyped]
import segno
from barcode.writer import SVGWriter  # type: ignore[import-untyped]


@lru_cache(maxsize=512)
def qr_uri(text: str) -> str:
    return str(segno.make(text, error="m").svg_data_uri(scale=4, border=2))


@lru_cache(maxsize=512)
def barcode_uri(text: str) -> str:
    """Code 128 (any printable ASCII), without the human-readable line (the page prints it)."""
    out = io.BytesIO()
    barcode.get("code128", text, writer=SVGWriter()).write(
        out, options={"write_text": False, "module_height": 15.0, "quiet_zone": 2.0}
    )
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode()
