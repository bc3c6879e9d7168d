"""Draw the Latent application icon and write ``latent.png`` and ``latent.ico``.

Run once after changing the design (the outputs are committed):

    .venv/bin/python resources/icons/make_icons.py

The motif is an autoencoder's hourglass (wide - narrow - wide bars) over a
trace, in white on a teal rounded square; drawn at 4x and downsampled so the
edges are smooth at every size the ``.ico`` carries.
"""
from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SIZE = 256  # px, the PNG's size and the largest .ico entry
ICO_SIZES = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]
BACKGROUND = (18, 109, 120, 255)  # teal
FOREGROUND = (255, 255, 255, 255)
ACCENT = (255, 196, 61, 255)  # amber: the latent code


def draw(size: int = SIZE) -> Image.Image:
    """The icon as an RGBA image of ``size`` x ``size`` pixels."""
    s = 4 * size  # supersampled canvas
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((0, 0, s - 1, s - 1), radius=int(0.22 * s), fill=BACKGROUND)
    # hourglass: encoder bars shrink towards the code, decoder bars grow again
    widths = [0.62, 0.44, 0.18, 0.44, 0.62]
    bar_h = 0.075 * s
    top = 0.16 * s
    gap = 0.035 * s
    for i, w in enumerate(widths):
        y0 = top + i * (bar_h + gap)
        x0 = (1 - w) / 2 * s
        colour = ACCENT if i == 2 else FOREGROUND
        d.rounded_rectangle((x0, y0, s - x0, y0 + bar_h), radius=int(bar_h / 2), fill=colour)
    # a trace underneath: a few periods of a beat-like waveform
    base = 0.80 * s
    pts = []
    for k in range(201):
        t = k / 200
        x = (0.14 + 0.72 * t) * s
        phase = (t * 3) % 1.0
        spike = math.exp(-((phase - 0.5) / 0.03) ** 2)
        y = base - 0.09 * s * spike + 0.015 * s * math.sin(2 * math.pi * t * 3)
        pts.append((x, y))
    d.line(pts, fill=FOREGROUND, width=max(2, int(0.022 * s)), joint="curve")
    return img.resize((size, size), Image.LANCZOS)


def main() -> None:
    icon = draw(SIZE)
    icon.save(HERE / "latent.png", optimize=True)
    icon.save(HERE / "latent.ico", sizes=ICO_SIZES)


if __name__ == "__main__":
    main()
