#!/usr/bin/env python3
"""PIL Lanczos goldens for tests/test_image_limits.c (run once, output committed).

    /work/main/tools/.venv/bin/python tests/data/resize/make_golden.py

pil_lanczos.bin: for each case of CASES in order, the RGB8 bytes of
Image.fromarray(pattern(w, h)).resize((ow, oh), Image.LANCZOS), computed the
way Pillow <= 12 does (A1111 pins 9.5): horizontal pass, then vertical (as two
single-axis resizes, which give exactly that). Pillow 13 runs the vertical
pass first when the height shrinks by more than twice as many pixels as the
width; none of these cases does, so Pillow 13's one-call resize gives the
same bytes."""
import os

import numpy as np
from PIL import Image

# (w, h, out_w, out_h): must match the C test's table.
CASES = [(77, 77, 64, 64), (64, 64, 77, 77), (100, 60, 13, 7), (1, 1, 5, 3), (3, 5, 1, 1),
         (333, 17, 100, 3), (20, 30, 50, 9), (16, 16, 16, 40), (517, 3, 64, 3), (7, 300, 7, 64),
         (640, 480, 64, 48)]


def pattern(w, h):
    """The same integers as pattern() in tests/test_image_limits.c."""
    y, x, c = np.meshgrid(np.arange(h, dtype=np.uint32), np.arange(w, dtype=np.uint32),
                          np.arange(3, dtype=np.uint32), indexing="ij")
    hsh = ((x * np.uint32(2654435761)) ^ (y * np.uint32(40503)) ^ (c * np.uint32(97))) >> np.uint32(7)
    v = x * 29 + y * 53 + c * 101 + ((x * y) % 7) * 17 + (hsh & 63)
    return (v & 255).astype(np.uint8)


def main():
    out = b""
    for w, h, ow, oh in CASES:
        im = Image.fromarray(pattern(w, h))
        r = im.resize((ow, h), Image.LANCZOS) if ow != w else im
        r = r.resize((ow, oh), Image.LANCZOS) if oh != h else r
        out += np.asarray(r).tobytes()
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pil_lanczos.bin")
    with open(path, "wb") as f:
        f.write(out)
    print(path, len(out), "bytes")


if __name__ == "__main__":
    main()
