"""torch.save's zip format written with numpy and the standard library only.

Tests make .ckpt variants of the committed tiny model with this, so they need
no PyTorch. The layout is what torch.save (PyTorch >= 1.6) writes:

    <name>/data.pkl        the object, pickle protocol 2; each tensor is
                           torch._utils._rebuild_tensor_v2(storage, offset,
                           size, stride, requires_grad, OrderedDict()), each
                           storage a persistent id ('storage', torch.<T>Storage,
                           key, 'cpu', numel)
    <name>/byteorder       "little"
    <name>/data/<key>      raw little-endian storage bytes, ZIP_STORED,
                           64-byte aligned (padding in the local extra field)
    <name>/version         "3\\n"

The pickle comes from CPython's own Pickler with stand-in classes registered
under torch's names, so its opcodes are CPython's, not ours:
`torch_zip.py --selfcheck` (with a real torch importable) compares data.pkl
byte for byte with torch.save's.
"""
import collections
import io
import pickle
import struct
import sys
import types
import zipfile

import numpy as np

# numpy dtype (or "BF16" for uint16 bit patterns) -> torch storage class name
_STORAGE = {
    np.dtype(np.float32): "FloatStorage", np.dtype(np.float16): "HalfStorage",
    "BF16": "BFloat16Storage", np.dtype(np.float64): "DoubleStorage",
    np.dtype(np.int64): "LongStorage", np.dtype(np.int32): "IntStorage",
    np.dtype(np.int16): "ShortStorage", np.dtype(np.int8): "CharStorage",
    np.dtype(np.uint8): "ByteStorage", np.dtype(np.bool_): "BoolStorage",
}


def _stand_ins():
    """Module objects named torch / torch._utils holding the stand-ins, so
    the pickler writes GLOBAL 'torch._utils _rebuild_tensor_v2' etc. Only
    installed when the real torch is not loaded."""
    if "torch" in sys.modules:
        if getattr(sys.modules["torch"], "_sdvk_stand_in", False):
            return sys.modules["torch"], sys.modules["torch._utils"]
        raise RuntimeError("torch_zip: the real torch is imported; use torch.save instead")
    torch = types.ModuleType("torch")
    torch._sdvk_stand_in = True
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*a):  # never called: only its name is pickled
        raise RuntimeError("stand-in")
    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in set(_STORAGE.values()):
        cls = type(name, (), {})
        cls.__module__ = "torch"
        setattr(torch, name, cls)
    torch._utils = utils
    sys.modules["torch"] = torch
    sys.modules["torch._utils"] = utils
    return torch, utils


class Storage:
    def __init__(self, arr, dtype_key):
        self.arr = arr  # 1-D, contiguous
        self.dtype_key = dtype_key


class Tensor:
    """A tensor view: storage, element offset, size, stride."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset = storage, offset
        self.size, self.stride = tuple(size), tuple(stride)

    def __reduce_ex__(self, proto):
        _, utils = _stand_ins()
        return (utils._rebuild_tensor_v2,
                (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict()))


def tensor(arr, bf16=False):
    """A contiguous tensor owning a new storage. bf16: arr holds uint16 bit patterns."""
    a = np.array(arr, order="C", copy=True)  # (ascontiguousarray would make 0-d 1-d)
    key = "BF16" if bf16 else a.dtype
    st = Storage(a.reshape(-1), key)
    stride, acc = [], 1
    for s in reversed(a.shape):
        stride.append(acc)
        acc *= s
    return Tensor(st, 0, a.shape, tuple(reversed(stride)))


class _Pickler(pickle.Pickler):
    def __init__(self, f):
        super().__init__(f, protocol=2)
        self.keys = {}  # id(storage) -> key
        self.order = []

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            torch, _ = _stand_ins()
            k = self.keys.get(id(obj))
            if k is None:
                k = self.keys[id(obj)] = str(len(self.keys))
                self.order.append(obj)
            return ("storage", getattr(torch, _STORAGE[obj.dtype_key]), k, "cpu", obj.arr.size)
        return None


def dumps_pickle(obj):
    """(data.pkl bytes, storages in key order)."""
    _stand_ins()
    buf = io.BytesIO()
    p = _Pickler(buf)
    p.dump(obj)
    return buf.getvalue(), p.order


def _aligned_info(zf, name):
    """A ZipInfo whose data starts at a multiple of 64 (torch's layout)."""
    zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    zi.compress_type = zipfile.ZIP_STORED
    off = zf.fp.tell() + 30 + len(name.encode())
    pad = (64 - (off + 4) % 64) % 64
    zi.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    return zi


def save(obj, path, archive="archive"):
    pkl, storages = dumps_pickle(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in [(archive + "/data.pkl", pkl), (archive + "/byteorder", b"little")]:
            zf.writestr(_aligned_info(zf, name), data)
        for k, st in enumerate(storages):
            name = "%s/data/%d" % (archive, k)
            zf.writestr(_aligned_info(zf, name), st.arr.tobytes())
        zf.writestr(_aligned_info(zf, archive + "/version"), b"3\n")


def _selfcheck():
    """Same object through torch.save and through this module: same data.pkl."""
    import subprocess
    import tempfile
    d = tempfile.mkdtemp()
    code = r"""
import collections, torch, zipfile
a = torch.arange(12, dtype=torch.float32).reshape(3, 4)
sd = collections.OrderedDict()
sd['a'] = a
sd['h'] = torch.ones(2, 3, dtype=torch.float16)
sd['b'] = torch.zeros(5, dtype=torch.bfloat16)
sd['s'] = torch.tensor(2.5)
torch.save({'state_dict': sd}, '%s/t.ckpt')
z = zipfile.ZipFile('%s/t.ckpt')
n = [x for x in z.namelist() if x.endswith('/data.pkl')][0]
open('%s/torch.pkl', 'wb').write(z.read(n))
""" % (d, d, d)
    subprocess.run([sys.executable, "-c", code], check=True)
    sd = collections.OrderedDict()
    sd["a"] = tensor(np.arange(12, dtype=np.float32).reshape(3, 4))
    sd["h"] = tensor(np.ones((2, 3), np.float16))
    sd["b"] = tensor(np.zeros(5, np.uint16), bf16=True)
    sd["s"] = tensor(np.array(2.5, np.float32))
    mine, _ = dumps_pickle({"state_dict": sd})
    theirs = open(d + "/torch.pkl", "rb").read()
    print("torch.save data.pkl %d bytes, torch_zip %d bytes: %s"
          % (len(theirs), len(mine), "identical" if mine == theirs else "DIFFERENT"))
    return 0 if mine == theirs else 1


if __name__ == "__main__":
    if sys.argv[1:] == ["--selfcheck"]:
        sys.exit(_selfcheck())
    print(__doc__)
