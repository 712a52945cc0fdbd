"""PNG images as data: URLs, with the standard library's zlib only (no imaging library in the browser)."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np


def png_data_url(pixels: np.ndarray, level: int = 6) -> str:
    """A PNG of a uint8 image as a data: URL (stdlib zlib only).

    (h, w) is greyscale (colour type 0); (h, w, 3) is RGB (colour type 2). ``level`` is zlib's
    (1: quickest, for an image encoded on every click; 6: smaller).
    """
    img = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = img.shape[:2]
    colour_type = 2 if img.ndim == 3 else 0
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ValueError(f"a PNG needs an (h, w) grey or (h, w, 3) RGB image, got shape {img.shape}")
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, level)) + chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")

