#!/usr/bin/env python3
"""Writes the seed corpora and the regression inputs of tests/fuzz (run once;
the outputs are committed). Needs numpy and Pillow (tools/.venv).

    python tests/fuzz/make_seeds.py            # from the repository root

Every file is small: real encodings of tiny pictures in the formats and
variants the decoders accept or refuse, cut copies of some, and handmade
headers for the findings of issue 19."""
import io
import json
import os
import struct
import zlib

import numpy as np
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "corpus")
CRASHES = os.path.join(ROOT, "crashes")


def put(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def picture(w, h, seed=0):
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    a = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x * y * 7) % 256], -1)
    a = (a + rng.integers(0, 32, a.shape)).clip(0, 255)
    return a.astype(np.uint8)


def enc(img, fmt, **kw):
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(w, h, depth=8, ctype=2):
    """Signature + IHDR + an empty IDAT + IEND: a PNG that only claims a size."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
            png_chunk(b"IDAT", zlib.compress(b"")) + png_chunk(b"IEND", b""))


def images():
    out = os.path.join(CORPUS, "image")
    rgb = Image.fromarray(picture(13, 9))
    grey = rgb.convert("L")
    put(out, "rgb.png", enc(rgb, "PNG"))
    put(out, "rgba.png", enc(rgb.convert("RGBA"), "PNG"))
    put(out, "grey.png", enc(grey, "PNG"))
    put(out, "grey_alpha.png", enc(grey.convert("LA"), "PNG"))
    put(out, "bw_1bit.png", enc(grey.convert("1"), "PNG"))
    put(out, "palette_trns.png", enc(rgb.convert("P", palette=Image.ADAPTIVE, colors=16), "PNG",
                                     transparency=3))
    put(out, "palette_4bit.png", enc(rgb.convert("P", palette=Image.ADAPTIVE, colors=16), "PNG",
                                     bits=4))
    # Pillow cannot write Adam7: built by hand.
    put(out, "interlaced.png", adam7_png(picture(11, 7)))
    put(out, "text_chunks.png", enc(rgb, "PNG", pnginfo=_pnginfo()))
    put(out, "rgb16.png", enc(Image.fromarray((picture(5, 4).astype(np.uint16) * 257)[:, :, 0]), "PNG"))
    full = enc(Image.fromarray(picture(16, 16)), "PNG")
    put(out, "rgb_cut.png", full[: len(full) * 2 // 3])
    put(out, "rgb.jpg", enc(rgb, "JPEG", quality=80))
    put(out, "rgb444.jpg", enc(rgb, "JPEG", quality=90, subsampling=0))
    put(out, "grey.jpg", enc(grey, "JPEG"))
    put(out, "progressive.jpg", enc(Image.fromarray(picture(24, 17)), "JPEG", progressive=True))
    put(out, "cmyk.jpg", enc(rgb.convert("CMYK"), "JPEG"))
    put(out, "restart.jpg", enc(rgb, "JPEG", restart_marker_blocks=1) if _has_restart() else enc(rgb, "JPEG"))
    jfull = enc(Image.fromarray(picture(32, 24)), "JPEG")
    put(out, "rgb_cut.jpg", jfull[: len(jfull) // 2])
    put(out, "rgb24.bmp", enc(rgb, "BMP"))
    put(out, "grey8.bmp", enc(grey, "BMP"))
    put(out, "bw1.bmp", enc(grey.convert("1"), "BMP"))
    put(out, "palette4.bmp", enc(rgb.convert("P", palette=Image.ADAPTIVE, colors=16), "BMP"))
    put(out, "rgba32.bmp", enc(rgb.convert("RGBA"), "BMP"))
    put(out, "topdown.bmp", bmp_topdown(picture(5, 3)))
    b = enc(rgb, "BMP")
    put(out, "rgb24_cut.bmp", b[: len(b) - 20])
    put(out, "gif.gif", enc(rgb, "GIF"))
    put(out, "pgm8.pgm", enc(grey, "PPM"))

    # Regression inputs of issue 19's findings (each must give a clear error
    # or a correct result).
    reg = os.path.join(CRASHES, "image")
    g16 = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000
    put(reg, "issue19-pgm16-8x8.pgm", b"P5\n8 8\n65535\n" + g16.astype(">u2").tobytes())
    put(reg, "issue19-pgm16-4096x4096-header.pgm", b"P5\n4096 4096\n65535\n" + b"\0" * 64)
    put(reg, "issue19-png16-8x8.png", enc(Image.fromarray(g16.astype(np.uint16)), "PNG"))
    put(reg, "issue19-jpeg-huffman-count-over-256.jpg", jpeg_bad_huffman(rgb))
    put(reg, "issue19-77x77.png", enc(Image.fromarray(picture(77, 77, 3)), "PNG"))
    put(reg, "issue19-png-100000x100000-header.png", png_header_only(100000, 100000))
    put(reg, "issue19-png-16384x16384-header.png", png_header_only(16384, 16384))
    jfull = enc(Image.fromarray(picture(64, 48)), "JPEG")
    put(reg, "issue19-jpeg-truncated.jpg", jfull[: len(jfull) * 3 // 5])
    put(reg, "issue19-jpeg-65500x65500-header.jpg", jpeg_size(rgb, 65500, 65500))
    put(reg, "issue19-bmp-height-int-min.bmp", bmp_height(rgb, -2**31))


def _pnginfo():
    from PIL import PngImagePlugin
    i = PngImagePlugin.PngInfo()
    i.add_text("parameters", "a cat\nSteps: 20")
    i.add_text("comment", "zipped " * 20, zip=True)
    i.add_itxt("title", "\u732b", lang="ja")
    return i


def _has_restart():
    try:
        enc(Image.new("RGB", (8, 8)), "JPEG", restart_marker_blocks=1)
        return True
    except Exception:
        return False


def adam7_png(a):
    h, w, _ = a.shape
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = a[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        for row in sub:
            raw += b"\0" + row.tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw)) +
            png_chunk(b"IEND", b""))


def bmp_topdown(a):
    h, w, _ = a.shape
    row = (w * 3 + 3) // 4 * 4
    pix = b"".join(a[y, :, ::-1].tobytes().ljust(row, b"\0") for y in range(h))
    info = struct.pack("<IiiHHIIiiII", 40, w, -h, 1, 24, 0, len(pix), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + len(pix), 0, 0, 54) + info + pix


def bmp_height(img, height):
    b = bytearray(enc(img, "BMP"))
    struct.pack_into("<i", b, 22, height)
    return bytes(b)


def jpeg_segments(data):
    """(marker, payload) list up to SOS, then the rest."""
    i, segs = 2, []
    while True:
        assert data[i] == 0xFF
        m = data[i + 1]
        n = struct.unpack(">H", data[i + 2:i + 4])[0]
        segs.append((m, data[i + 4:i + 2 + n]))
        i += 2 + n
        if m == 0xDA:
            return segs, data[i:]


def jpeg_join(segs, rest):
    out = b"\xff\xd8"
    for m, p in segs:
        out += bytes([0xFF, m]) + struct.pack(">H", len(p) + 2) + p
    return out + rest


def jpeg_bad_huffman(img):
    """A DHT whose 16 code counts add up to 16 * 255 = 4080 > 256 (the table
    stb_image 2.27 overran), with enough symbol bytes for the length field."""
    segs, rest = jpeg_segments(enc(img, "JPEG"))
    counts = bytes([255] * 16)
    dht = bytes([0x00]) + counts + bytes(i % 256 for i in range(4080))
    segs = [s for s in segs if s[0] != 0xC4]
    segs.insert(len(segs) - 1, (0xC4, dht))
    return jpeg_join(segs, rest)


def jpeg_size(img, w, h):
    segs, rest = jpeg_segments(enc(img, "JPEG"))
    out = []
    for m, p in segs:
        if m in (0xC0, 0xC2):
            p = p[:1] + struct.pack(">HH", h, w) + p[5:]
        out.append((m, p))
    return jpeg_join(out, rest[:200])


if __name__ == "__main__":
    images()
