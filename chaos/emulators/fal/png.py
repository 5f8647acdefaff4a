"""The image every successful job "generates": a small, valid RGB PNG built with zlib only."""

from __future__ import annotations

import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def gradient_png(width: int = 64, height: int = 64) -> bytes:
    """A ``width`` x ``height`` 8-bit RGB PNG: red grows left to right, green top to bottom."""
    rows = b"".join(
        b"\x00"  # filter type "none" for each scanline
        + bytes(
            channel
            for x in range(width)
            for channel in (x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), 128)
        )
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit depth, truecolour
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b"")
