"""Minimal safetensors reader/writer on numpy + json (no safetensors package).

Format: u64 little-endian header length N, N bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
then the data area (offsets are relative to its start). BF16 has no numpy
dtype, so it travels as uint16 bit patterns; `to_f32` widens it.
"""
import json
import struct

import numpy as np

# safetensors dtype name -> numpy dtype used for the raw bytes
_NP = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U8": np.uint8, "BOOL": np.bool_,
}


def bf16_to_f32(u16):
    return (np.asarray(u16, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16(x):
    """Round to nearest even, as torch does (NaN kept quiet)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    r = ((u >> 16) & 1) + 0x7FFF
    out = ((u + r) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        out[nan] = 0x7FC0
    return out


def to_f32(arr, dtype):
    """Raw array as read (dtype = safetensors name) -> float32 copy."""
    if dtype == "BF16":
        return bf16_to_f32(arr)
    return np.asarray(arr, dtype=np.float32)


def from_f32(x, dtype):
    """float32 array -> raw array for dtype F32/F16/BF16."""
    x = np.asarray(x, dtype=np.float32)
    if dtype == "F32":
        return x
    if dtype == "F16":
        return x.astype(np.float16)
    if dtype == "BF16":
        return f32_to_bf16(x)
    raise ValueError("from_f32: unsupported dtype %s" % dtype)


class SafeTensors:
    """Lazy reader: tensors are memmapped views, nothing is loaded up front."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            hdr = json.loads(f.read(n).decode("utf-8"))
        self.metadata = hdr.pop("__metadata__", {}) or {}
        self.header = hdr
        self._base = 8 + n
        self._mm = np.memmap(path, dtype=np.uint8, mode="r")

    def keys(self):
        return list(self.header.keys())

    def __contains__(self, k):
        return k in self.header

    def dtype(self, k):
        return self.header[k]["dtype"]

    def shape(self, k):
        return tuple(self.header[k]["shape"])

    def raw(self, k):
        h = self.header[k]
        b, e = h["data_offsets"]
        buf = self._mm[self._base + b:self._base + e]
        return buf.view(_NP[h["dtype"]]).reshape(h["shape"])

    def f32(self, k):
        return to_f32(self.raw(k), self.dtype(k))


def write(path, items, metadata=None):
    """Stream tensors to `path` without holding them all in memory.

    items: list of (name, dtype, shape, producer); producer() returns an array
    of exactly that shape already in the raw dtype (see from_f32), or it is the
    array itself. Offsets come from shapes, so the header is written first.
    """
    hdr = {}
    off = 0
    for name, dt, shape, _ in items:
        nb = int(np.prod(shape, dtype=np.int64)) * np.dtype(_NP[dt]).itemsize
        hdr[name] = {"dtype": dt, "shape": [int(s) for s in shape], "data_offsets": [off, off + nb]}
        off += nb
    if metadata:
        hdr["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    js = json.dumps(hdr, separators=(",", ":")).encode("utf-8")
    js += b" " * ((8 - len(js) % 8) % 8)  # keep the data area 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for name, dt, shape, prod in items:
            a = prod() if callable(prod) else prod
            a = np.ascontiguousarray(a).reshape(np.shape(a))  # 0-d stays 0-d
            if a.dtype != np.dtype(_NP[dt]) or tuple(a.shape) != tuple(shape):
                raise ValueError("write %s: got %s %s, header says %s %s"
                                 % (name, a.dtype, a.shape, dt, tuple(shape)))
            f.write(a.tobytes())


def _selftest():
    import os
    import tempfile
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5)).astype(np.float32)
    d = tempfile.mkdtemp()
    p = os.path.join(d, "t.safetensors")
    items = [("a", "F32", x.shape, x), ("b", "F16", x.shape, lambda: from_f32(x, "F16")),
             ("c", "BF16", x.shape, lambda: from_f32(x, "BF16")),
             ("s", "F32", (), np.array(0.5, np.float32)),
             ("i", "I64", (1, 4), np.arange(4, dtype=np.int64)[None])]
    write(p, items, {"k": "v"})
    st = SafeTensors(p)
    assert st.metadata == {"k": "v"}
    assert np.array_equal(st.f32("a"), x)
    assert np.abs(st.f32("b") - x).max() < 1e-3
    assert np.abs(st.f32("c") - x).max() <= np.abs(x).max() * 2 ** -8
    assert st.f32("s").shape == () and float(st.f32("s")) == 0.5
    assert st.raw("i").tolist() == [[0, 1, 2, 3]]
    # bf16 rounding agrees with torch when it is there
    try:
        import torch
        tb = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
        assert np.array_equal(tb, f32_to_bf16(x))
    except ImportError:
        pass
    print("st_io selftest ok")


if __name__ == "__main__":
    _selftest()
