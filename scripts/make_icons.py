"""Draw the app's PNG icons (the tick of ``static/img/icon.svg``) without any imaging library.

    .venv/bin/python scripts/make_icons.py

Writes ``icon-192.png`` and ``icon-512.png`` (a rounded square, for where
the icon is shown as is) and ``icon-maskable-192.png`` / ``-512.png`` (the
colour to every edge, the tick inside the central 80% circle that any mask
keeps) to ``src/safexam/web/static/img/``. The output is the same bytes on
every run, so the committed files can be checked against it.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "safexam" / "web" / "static" / "img"
BRAND = (0x1F, 0x4F, 0xD1)
WHITE = (0xFF, 0xFF, 0xFF)
# The tick of icon.svg, in its 32-unit box: M9 16.5 l4.5 4.5 L23 11.5, stroke 3.2.
TICK = ((9.0, 16.5), (13.5, 21.0), (23.0, 11.5))
STROKE = 3.2
CORNER = 7.0


def _segment_distance(px: float, py: float, a: tuple[float, float], b: tuple[float, float]) -> float:
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def _rounded_square_distance(px: float, py: float, size: float, radius: float) -> float:
    """Signed distance to a rounded square of side ``size`` (negative inside)."""
    half = size / 2
    qx = abs(px - half) - (half - radius)
    qy = abs(py - half) - (half - radius)
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    return outside + min(max(qx, qy), 0.0) - radius


def draw(pixels: int, *, maskable: bool) -> bytes:
    """The RGBA rows of one icon."""
    # Units of the 32-unit drawing per pixel; a maskable icon shrinks the tick
    # into the safe zone (a circle of 40% of the side around the centre).
    scale = 32 / pixels
    shrink = 0.72 if maskable else 1.0
    rows = bytearray()
    for y in range(pixels):
        rows.append(0)  # PNG filter: none
        for x in range(pixels):
            ux, uy = (x + 0.5) * scale, (y + 0.5) * scale
            if maskable:
                cover = 1.0
            else:
                edge = _rounded_square_distance(ux, uy, 32.0, CORNER) / scale
                cover = max(0.0, min(1.0, 0.5 - edge))
            tx, ty = 16 + (ux - 16) / shrink, 16 + (uy - 16) / shrink
            distance = min(
                _segment_distance(tx, ty, TICK[0], TICK[1]),
                _segment_distance(tx, ty, TICK[1], TICK[2]),
            )
            ink = max(0.0, min(1.0, (STROKE / 2 - distance) / (scale / shrink) + 0.5))
            colour = [round(b + (w - b) * ink) for b, w in zip(BRAND, WHITE, strict=True)]
            rows.extend((*colour, round(255 * cover)))
    return bytes(rows)


def png(pixels: int, rows: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", pixels, pixels, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def main() -> None:
    for pixels in (192, 512):
        for maskable in (False, True):
            name = f"icon-maskable-{pixels}.png" if maskable else f"icon-{pixels}.png"
            (OUT / name).write_bytes(png(pixels, draw(pixels, maskable=maskable)))


if __name__ == "__main__":
    main()
