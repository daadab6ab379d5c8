"""Home-screen icons drawn here: a square PNG in the programme's colours (a disc of the accent
colour on the primary one), encoded with zlib, so a programme without its own icon file still
installs as an app. No image library needed."""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


@lru_cache(maxsize=64)
def png(size: int, background: str, foreground: str) -> bytes:
    """A ``size`` x ``size`` PNG: ``foreground`` disc (60 % wide) on ``background``."""
    back, fore = bytes(_rgb(background)), bytes(_rgb(foreground))
    centre, radius2 = (size - 1) / 2, (size * 0.3) ** 2
    rows = []
    for y in range(size):
        dy2 = (y - centre) ** 2
        row = bytearray(b"\x00")
        for x in range(size):
            row += fore if (x - centre) ** 2 + dy2 <= radius2 else back
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + _chunk(b"IEND", b"")
    )
