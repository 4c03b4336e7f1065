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


# ---- safetensors ----

DT_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "U8": 1, "I64": 8, "I8": 1}


def st_file(tensors, meta=None, fill=0):
    """tensors: list of (name, dtype, shape); data is `fill` bytes, gap-free."""
    hdr, off, data = {}, 0, b""
    for name, dt, shape in tensors:
        n = DT_SIZE[dt]
        for d in shape:
            n *= d
        hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
        data += bytes([fill]) * n
    if meta:
        hdr["__metadata__"] = meta
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


CL = "cond_stage_model.transformer.text_model."
UN = "model.diffusion_model."
VA = "first_stage_model."


def micro_clip(width=4, vocab=8, n_pos=77, layers=1, ffn=8, dt="F16"):
    t = [(CL + "embeddings.token_embedding.weight", dt, (vocab, width)),
         (CL + "embeddings.position_embedding.weight", dt, (n_pos, width))]
    for l in range(layers):
        p = CL + f"encoder.layers.{l}."
        for n in ("layer_norm1", "layer_norm2"):
            t += [(p + n + ".weight", dt, (width,)), (p + n + ".bias", dt, (width,))]
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            t += [(p + "self_attn." + n + ".weight", dt, (width, width)),
                  (p + "self_attn." + n + ".bias", dt, (width,))]
        t += [(p + "mlp.fc1.weight", dt, (ffn, width)), (p + "mlp.fc1.bias", dt, (ffn,)),
              (p + "mlp.fc2.weight", dt, (width, ffn)), (p + "mlp.fc2.bias", dt, (width,))]
    t += [(CL + "final_layer_norm.weight", dt, (width,)), (CL + "final_layer_norm.bias", dt, (width,))]
    return t


def unet_skeleton(ch=32, in_ch=4, time_dim=8, ctx=16, levels=2, n_res=1, zero=None):
    """The tensors architecture inference reads, with the extents it reads
    (trailing dims shrunk to 1: the graph build then refuses them)."""
    def sh(*d):
        return d
    t = [(UN + "input_blocks.0.0.weight", "U8", sh(ch, in_ch, 1, 1)),
         (UN + "time_embed.0.weight", "U8", sh(time_dim, ch))]
    blk = 1
    for lv in range(levels):
        for r in range(n_res):
            t.append((UN + f"input_blocks.{blk}.0.in_layers.2.weight", "U8", sh(ch * (lv + 1), 1, 1, 1)))
            if lv == 0:
                t.append((UN + f"input_blocks.{blk}.1.proj_in.weight", "U8", sh(1, 1, 1, 1)))
                t.append((UN + f"input_blocks.{blk}.1.transformer_blocks.0.attn1.to_q.weight", "U8", sh(1, 1)))
                t.append((UN + f"input_blocks.{blk}.1.transformer_blocks.0.attn2.to_k.weight", "U8", sh(1, ctx)))
            blk += 1
        if lv + 1 < levels:
            t.append((UN + f"input_blocks.{blk}.0.op.weight", "U8", sh(1, 1, 1, 1)))
            blk += 1
    t += [(UN + "out.2.weight", "U8", sh(4, 1, 1, 1)),
          (UN + "middle_block.1.proj_in.weight", "U8", sh(1, 1, 1, 1)),
          (UN + "middle_block.1.transformer_blocks.0.attn1.to_q.weight", "U8", sh(1, 1))]
    return t


def vae_skeleton(ch=32, levels=2, n_res=1, z=4, img=3, encoder=True, decoder=True):
    t = []
    if encoder:
        t += [(VA + "encoder.conv_in.weight", "U8", (ch, img, 1, 1)),
              (VA + "encoder.conv_out.weight", "U8", (2 * z, 1, 1, 1))]
        for lv in range(levels):
            for r in range(n_res):
                t.append((VA + f"encoder.down.{lv}.block.{r}.conv1.weight", "U8", (1, 1, 1, 1)))
            t.append((VA + f"encoder.down.{lv}.block.0.conv2.weight", "U8", (ch * (lv + 1), 1, 1, 1)))
    if decoder:
        t += [(VA + "decoder.conv_in.weight", "U8", (1, z, 1, 1)),
              (VA + "decoder.conv_out.weight", "U8", (img, ch, 1, 1))]
        for lv in range(levels):
            for r in range(n_res + 1):
                t.append((VA + f"decoder.up.{lv}.block.{r}.conv1.weight", "U8", (1, 1, 1, 1)))
            t.append((VA + f"decoder.up.{lv}.block.0.conv2.weight", "U8", (ch * (lv + 1), 1, 1, 1)))
    # drop duplicates (conv2 of block 0 listed once per level already)
    seen, out = set(), []
    for x in t:
        if x[0] not in seen:
            seen.add(x[0])
            out.append(x)
    return out


def replace_shape(tensors, name_end, shape):
    return [(n, d, shape if n.endswith(name_end) else s) for n, d, s in tensors]


def safetensors_seeds():
    out = os.path.join(CORPUS, "safetensors")
    put(out, "micro_clip_f16.safetensors", st_file(micro_clip(), {"sdvk.clip.num_heads": "2"}, fill=0x3c))
    put(out, "micro_clip_f32_2layers.safetensors", st_file(micro_clip(width=8, layers=2, dt="F32")))
    put(out, "micro_clip_bf16_short.safetensors", st_file(micro_clip(n_pos=5, dt="BF16")))
    put(out, "unet_skeleton.safetensors", st_file(unet_skeleton(), {"sdvk.unet.num_heads": "8"}))
    put(out, "unet_skeleton_3levels.safetensors", st_file(unet_skeleton(levels=3, n_res=2)))
    put(out, "vae_skeleton.safetensors", st_file(vae_skeleton(), {"sdvk.vae.scale_factor": "0.18215"}))
    put(out, "vae_decoder_only.safetensors", st_file(vae_skeleton(encoder=False, levels=3)))
    put(out, "all_skeletons.safetensors", st_file(micro_clip() + unet_skeleton() + vae_skeleton(),
                                                  {"format": "pt"}))
    put(out, "extras.safetensors", st_file(micro_clip() + [("alphas_cumprod", "F32", (4,)),
                                                           ("model_ema.decay", "F32", ()),
                                                           (CL + "embeddings.position_ids", "I64", (1, 3))]))
    put(out, "empty_header.safetensors", struct.pack("<Q", 8) + b"{}      ")
    put(out, "metadata_only.safetensors", st_file([], {"a": "b"}))
    full = st_file(micro_clip())
    put(out, "micro_clip_cut.safetensors", full[: len(full) - 100])

    # Issue 19: zero-dimension tensors (0 bytes, so their other extents were
    # never checked) reaching arch.c's int casts and divisions.
    reg = os.path.join(CRASHES, "safetensors")
    u, v = unet_skeleton(), vae_skeleton()
    put(reg, "issue19-unet-zero-channels.safetensors",
        st_file(replace_shape(replace_shape(u, "input_blocks.0.0.weight", (0, 4, 3, 3)),
                              "time_embed.0.weight", (8, 0))))
    put(reg, "issue19-unet-time-embed-zero.safetensors",
        st_file(replace_shape(u, "time_embed.0.weight", (0, 0))))
    put(reg, "issue19-unet-huge-dims.safetensors",
        st_file(replace_shape(replace_shape(u, "input_blocks.0.0.weight", (2**32, 0, 3, 3)),
                              "time_embed.0.weight", (8, 0))))
    put(reg, "issue19-vae-encoder-zero-channels.safetensors",
        st_file(replace_shape(vae_skeleton(decoder=False), "encoder.conv_in.weight", (0, 3, 3, 3))))
    put(reg, "issue19-vae-encoder-intmin-by-minus1.safetensors",
        st_file(replace_shape(replace_shape(vae_skeleton(decoder=False), "encoder.conv_in.weight",
                                            (2**32 - 1, 0, 3, 3)),
                              "encoder.down.0.block.0.conv2.weight", (2**31, 0, 1, 1))))
    put(reg, "issue19-vae-decoder-zero-channels.safetensors",
        st_file(replace_shape(vae_skeleton(encoder=False), "decoder.conv_out.weight", (3, 0, 3, 3))))
    put(reg, "issue19-clip-zero-width.safetensors",
        st_file(replace_shape(micro_clip(), "token_embedding.weight", (49408, 0)),
                {"sdvk.clip.num_heads": "2"}))
    put(reg, "issue19-clip-zero-vocab-positions.safetensors",
        st_file(replace_shape(replace_shape(micro_clip(), "token_embedding.weight", (0, 4)),
                              "position_embedding.weight", (0, 4))))
    put(reg, "issue19-shape-2e40x2e40.safetensors", st_file_raw(
        {"t": {"dtype": "F16", "shape": [2**40, 2**40], "data_offsets": [0, 0]}}))
    put(reg, "issue19-shape-2e31x2e31-f32.safetensors", st_file_raw(
        {"t": {"dtype": "F32", "shape": [2**31, 2**31], "data_offsets": [0, 16]}}, b"\0" * 16))


def st_file_raw(hdr, data=b""):
    h = json.dumps(hdr, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + data

# ---- npy ----

def npy_seeds():
    out = os.path.join(CORPUS, "npy")
    arrays = {
        "f32_1x4x2x2.npy": np.arange(16, dtype="<f4").reshape(1, 4, 2, 2) / 3,
        "f16_3.npy": np.array([1, -2, 65504], dtype="<f2"),
        "f64_2x2.npy": np.array([[1e300, -1e-300], [np.inf, np.nan]], dtype="<f8"),
        "i64_tokens.npy": np.array([[49406, 320, 2368, 49407]], dtype="<i8"),
        "i32_1.npy": np.array([7], dtype="<i4"),
        "u1_2x3.npy": np.arange(6, dtype="u1").reshape(2, 3),
        "i1.npy": np.array([-128, 127], dtype="i1"),
        "u4_big.npy": np.array([2**32 - 1], dtype="<u4"),
        "i2_u2.npy": np.array([-5, 5], dtype="<i2"),
        "scalar.npy": np.array(3.5, dtype="<f4"),
        "empty_0x3.npy": np.zeros((0, 3), dtype="<f4"),
        "big_endian.npy": np.array([1, 2], dtype=">f4"),
        "fortran.npy": np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)),
        "bool.npy": np.array([True, False]),
    }
    for name, a in arrays.items():
        b = io.BytesIO()
        np.save(b, a)
        put(out, name, b.getvalue())
    b = io.BytesIO()
    np.lib.format.write_array(b, np.arange(4, dtype="<f4"), version=(2, 0))
    put(out, "v2.npy", b.getvalue())
    hdr = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }"
    hdr += b" " * (-(10 + len(hdr) + 1) % 64) + b"\n"
    put(out, "py2_long.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr + b"\0" * 24)
    full = arrays["f32_1x4x2x2.npy"]
    b = io.BytesIO()
    np.save(b, full)
    put(out, "cut.npy", b.getvalue()[:-10])
    reg = os.path.join(CRASHES, "npy")
    for name, shape in (("zero-then-huge", "(0, 4611686018427387904, 4611686018427387904)"),
                        ("huge-then-zero", "(4611686018427387904, 4611686018427387904, 0)"),
                        ("over-limit", "(1073741825,)")):
        hdr = ("{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % shape).encode()
        hdr += b" " * (-(10 + len(hdr) + 1) % 64) + b"\n"
        put(reg, "limit-" + name + ".npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr)


if __name__ == "__main__":
    images()
    safetensors_seeds()
    npy_seeds()
