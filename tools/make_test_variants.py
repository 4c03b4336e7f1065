#!/usr/bin/python3
"""Test-time variants of the tiny model for tests/loaders.cmake (numpy and the
standard library only: no torch, no diffusers).

    make_test_variants.py --model tests/data/tiny/model.safetensors \\
        --diffusers tests/data/tiny/diffusers -o OUTDIR

Writes into OUTDIR:
  tiny_nometa.safetensors  the model without its metadata (a .ckpt has none)
  tiny.ckpt              torch.save({'state_dict': ..., 'global_step': 1}) layout
                         (tools/torch_zip.py: CPython's pickler, data.pkl
                         byte-identical to torch.save's)
  tiny_nowrap.ckpt       the tensors at the top level (no state_dict)
  tiny_zip64.ckpt        every zip record in its zip64 form
  lightning.ckpt         a PyTorch Lightning checkpoint (ModelCheckpoint callback,
                         numpy scalars, optimizer states) around the model
  tiny_deflate.ckpt      storages and data.pkl deflated (torch never does this;
                         other zip tools do)
  diffusers/             the folder diffusers' save_pretrained wrote for this
                         model, rebuilt from tests/data/tiny/diffusers/manifest.json
                         (made by tools/make_variants.py manifest)
  diffusers_mixed/       the same with a sharded UNet (index.json), the VAE as
                         .fp16.safetensors and the text encoder as pytorch_model.bin
  vae_ref.safetensors    a second VAE (the tiny VAE with every sign flipped), LDM
                         keys with first_stage_model.: what loading any of the
                         next four with --vae must give
  vae_plain.safetensors  that VAE without the prefix (vae-ft-mse style)
  vae.ckpt               the same as a .ckpt with a loss.logvar extra
  vae_diffusers/         the same as a diffusers AutoencoderKL folder
  evil_*.ckpt            pickles that would run `touch <marker>` (os.system,
                         builtins.eval, subprocess.Popen, a protocol-4
                         STACK_GLOBAL, builtins.getattr) - must be refused
  legacy.pt              a pre-1.6 torch.save stream (refused with advice)
  pkl_cut_<n>.ckpt       data.pkl cut to n% inside an intact zip
  storage_missing.ckpt, storage_short.ckpt   a storage entry absent / too short
  views.ckpt             a transposed view, an offset view and two tensors
                         sharing one storage (values checked by test_loaders)
"""
import argparse
import collections
import json
import os
import pickle
import struct
import sys
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
import torch_zip as tz  # noqa: E402

VAE = "first_stage_model."


def raw(st, k):
    return np.array(st.raw(k))


def tensors(st, keys):
    d = collections.OrderedDict()
    for k in keys:
        d[k] = tz.tensor(raw(st, k), bf16=st.dtype(k) == "BF16")
    return d


def write_st(path, items, metadata=None):
    st_io.write(path, [(k, dt, a.shape, a) for k, (dt, a) in items.items()], metadata)


def flip(a, dtype):
    """Every sign flipped (bit 15 / 31): a different VAE with known bytes."""
    if dtype in ("F16", "BF16"):
        return (a.view(np.uint16) ^ np.uint16(0x8000)).view(a.dtype)
    if dtype == "F32":
        return (a.view(np.uint32) ^ np.uint32(0x80000000)).view(np.float32)
    return a


def zip_with(path, entries, compress=zipfile.ZIP_STORED, zip64=False):
    """entries: [(name, bytes)], 64-byte aligned stored entries like torch."""
    old = zipfile.ZIP64_LIMIT
    if zip64:
        zipfile.ZIP64_LIMIT = 0  # every size and offset "too large": zip64 records
    try:
        with zipfile.ZipFile(path, "w", compress, allowZip64=True) as zf:
            for name, data in entries:
                zi = tz._aligned_info(zf, name)
                zi.compress_type = compress
                if zip64:
                    with zf.open(zi, "w", force_zip64=True) as f:
                        f.write(data)
                else:
                    zf.writestr(zi, data)
    finally:
        zipfile.ZIP64_LIMIT = old


def ckpt_entries(obj):
    pkl, storages = tz.dumps_pickle(obj)
    ents = [("archive/data.pkl", pkl), ("archive/byteorder", b"little")]
    ents += [("archive/data/%d" % i, s.arr.tobytes()) for i, s in enumerate(storages)]
    ents.append(("archive/version", b"3\n"))
    return ents


class Evil:
    """__reduce__ returns (callable, args): an unrestricted unpickler calls it."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--diffusers", required=True, help="tests/data/tiny/diffusers")
    ap.add_argument("--marker", default=None, help="file the evil pickles would create")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    out = a.output
    os.makedirs(out, exist_ok=True)
    marker = a.marker or os.path.join(out, "PWNED")
    st = st_io.SafeTensors(a.model)
    keys = st.keys()

    # The same tensors without metadata: a .ckpt cannot carry the tiny
    # model's sdvk.clip.num_heads = 2, so its CLIP runs with the SD v1.x
    # default (width / 64 = 1 head here); stage outputs are compared with this.
    write_st(os.path.join(out, "tiny_nometa.safetensors"),
             collections.OrderedDict((k, (st.dtype(k), raw(st, k))) for k in keys))

    # ---- .ckpt forms ----
    sd = tensors(st, keys)
    tz.save({"state_dict": sd, "global_step": 1, "epoch": 0}, os.path.join(out, "tiny.ckpt"))
    tz.save(sd, os.path.join(out, "tiny_nowrap.ckpt"))
    ents = ckpt_entries({"state_dict": tensors(st, keys)})
    zip_with(os.path.join(out, "tiny_zip64.ckpt"), ents, zip64=True)
    zip_with(os.path.join(out, "tiny_deflate.ckpt"), ents, compress=zipfile.ZIP_DEFLATED)

    # ---- diffusers folder from the manifest ----
    man = json.load(open(os.path.join(a.diffusers, "manifest.json")))
    dd = os.path.join(out, "diffusers")
    for comp in ("unet", "vae", "text_encoder"):
        os.makedirs(os.path.join(dd, comp), exist_ok=True)
        with open(os.path.join(a.diffusers, comp, "config.json")) as f:
            cfg = f.read()
        with open(os.path.join(dd, comp, "config.json"), "w") as f:
            f.write(cfg)
    for ent in man["files"]:
        items = collections.OrderedDict()
        for dkey, src, shape in ent["tensors"]:
            items[dkey] = (st.dtype(src), raw(st, src).reshape(shape))
        write_st(os.path.join(dd, ent["file"]), items, ent.get("metadata") or None)

    # The same folder as people also find it: the UNet sharded (index +
    # two shards), the VAE under the fp16 variant name, the text encoder as
    # a torch.save pytorch_model.bin.
    dm = os.path.join(out, "diffusers_mixed")
    for comp in ("unet", "vae", "text_encoder"):
        os.makedirs(os.path.join(dm, comp), exist_ok=True)
        with open(os.path.join(a.diffusers, comp, "config.json")) as f:
            cfg = f.read()
        with open(os.path.join(dm, comp, "config.json"), "w") as f:
            f.write(cfg)
    for ent in man["files"]:
        comp = ent["file"].split("/")[0]
        rows = [(dkey, src, shape) for dkey, src, shape in ent["tensors"]]
        if comp == "unet":
            half = len(rows) // 2
            wm = {}
            for i, part in enumerate((rows[:half], rows[half:])):
                fn = "diffusion_pytorch_model-%05d-of-00002.safetensors" % (i + 1)
                write_st(os.path.join(dm, "unet", fn), collections.OrderedDict(
                    (d, (st.dtype(src), raw(st, src).reshape(shape))) for d, src, shape in part))
                wm.update({d: fn for d, _, _ in part})
            with open(os.path.join(dm, "unet", "diffusion_pytorch_model.safetensors.index.json"), "w") as f:
                json.dump({"metadata": {"total_size": 0}, "weight_map": wm}, f)
        elif comp == "vae":
            write_st(os.path.join(dm, "vae", "diffusion_pytorch_model.fp16.safetensors"), collections.OrderedDict(
                (d, (st.dtype(src), raw(st, src).reshape(shape))) for d, src, shape in rows))
        else:
            tz.save(collections.OrderedDict(
                (d, tz.tensor(raw(st, src).reshape(shape), bf16=st.dtype(src) == "BF16")) for d, src, shape in rows),
                os.path.join(dm, "text_encoder", "pytorch_model.bin"))

    # A Lightning checkpoint as the original SD v1 releases were saved:
    # callbacks keyed by the ModelCheckpoint class, numpy scalars (via
    # numpy.core.multiarray.scalar and _codecs.encode), optimizer states.
    import types
    mod = types.ModuleType("pytorch_lightning.callbacks.model_checkpoint")
    ModelCheckpoint = type("ModelCheckpoint", (), {"__module__": mod.__name__})
    mod.ModelCheckpoint = ModelCheckpoint
    sys.modules.setdefault("pytorch_lightning", types.ModuleType("pytorch_lightning"))
    sys.modules.setdefault("pytorch_lightning.callbacks", types.ModuleType("pytorch_lightning.callbacks"))
    sys.modules[mod.__name__] = mod
    lsd = tensors(st, keys)
    tz.save({"epoch": 6, "global_step": 470000, "pytorch-lightning_version": "1.4.2",
             "state_dict": lsd,
             "callbacks": {ModelCheckpoint: {"monitor": None, "best_model_score": np.float64(0.25),
                                             "best_model_path": "", "current_score": np.float32(1.5),
                                             "dirpath": "/logs/checkpoints"}},
             "optimizer_states": [], "lr_schedulers": [{"scale": 1, "interval": "step"}]},
            os.path.join(out, "lightning.ckpt"))

    # ---- a second VAE in four forms ----
    vkeys = [k for k in keys if k.startswith(VAE)]
    neg = {k: flip(raw(st, k), st.dtype(k)) for k in vkeys}
    write_st(os.path.join(out, "vae_ref.safetensors"),
             collections.OrderedDict((k, (st.dtype(k), neg[k])) for k in vkeys))
    write_st(os.path.join(out, "vae_plain.safetensors"),
             collections.OrderedDict((k[len(VAE):], (st.dtype(k), neg[k])) for k in vkeys))
    vd = collections.OrderedDict((k[len(VAE):], tz.tensor(neg[k], bf16=st.dtype(k) == "BF16")) for k in vkeys)
    vd["loss.logvar"] = tz.tensor(np.zeros((), np.float32))
    tz.save({"state_dict": vd}, os.path.join(out, "vae.ckpt"))
    vdd = os.path.join(out, "vae_diffusers")
    os.makedirs(vdd, exist_ok=True)
    with open(os.path.join(a.diffusers, "vae", "config.json")) as f:
        cfg = f.read()
    with open(os.path.join(vdd, "config.json"), "w") as f:
        f.write(cfg)
    for ent in man["files"]:
        if not ent["file"].startswith("vae/"):
            continue
        items = collections.OrderedDict()
        for dkey, src, shape in ent["tensors"]:
            items[dkey] = (st.dtype(src), neg[src].reshape(shape))
        write_st(os.path.join(vdd, os.path.basename(ent["file"])), items, ent.get("metadata") or None)

    # ---- refusals ----
    small = collections.OrderedDict()
    small["model.diffusion_model.time_embed.0.weight"] = tz.tensor(np.zeros((4, 4), np.float32))
    cmd = "touch " + marker
    import builtins
    import subprocess
    evil = {
        "evil_system.ckpt": Evil(os.system, (cmd,)),
        "evil_eval.ckpt": Evil(builtins.eval, ("__import__('os').system(%r)" % cmd,)),
        "evil_popen.ckpt": Evil(subprocess.Popen, (["touch", marker],)),
        "evil_getattr.ckpt": Evil(builtins.getattr, (Evil(builtins.__import__, ("os",)), "system")),
    }
    for name, payload in evil.items():
        d = collections.OrderedDict(small)
        d["payload"] = payload
        tz.save({"state_dict": d}, os.path.join(out, name))
    # protocol 4: STACK_GLOBAL instead of GLOBAL
    p4 = pickle.dumps({"state_dict": {"payload": Evil(os.system, (cmd,))}}, protocol=4)
    zip_with(os.path.join(out, "evil_stackglobal.ckpt"),
             [("archive/data.pkl", p4), ("archive/version", b"3\n")])
    # pre-1.6 format: pickled magic number, protocol, sys info, then the object
    with open(os.path.join(out, "legacy.pt"), "wb") as f:
        for obj in (0x1950a86a20f9469cfc6c, 1001, {"protocol_version": 1001}):
            pickle.dump(obj, f, protocol=2)
    ents = ckpt_entries({"state_dict": tensors(st, keys[:40])})
    pkl = ents[0][1]
    for pct in (1, 10, 50, 90, 99):
        cut = [("archive/data.pkl", pkl[:len(pkl) * pct // 100])] + ents[1:]
        zip_with(os.path.join(out, "pkl_cut_%d.ckpt" % pct), cut)
    zip_with(os.path.join(out, "storage_missing.ckpt"), [e for e in ents if e[0] != "archive/data/3"])
    zip_with(os.path.join(out, "storage_short.ckpt"),
             [(n, d[:len(d) // 2] if n == "archive/data/3" else d) for n, d in ents])

    # ---- views: transposed, offset, shared storage ----
    base = np.arange(12, dtype=np.float32)
    s = tz.Storage(base, base.dtype)
    v = collections.OrderedDict()
    v["a"] = tz.Tensor(s, 0, (3, 4), (4, 1))
    v["a_t"] = tz.Tensor(s, 0, (4, 3), (1, 4))
    v["row1"] = tz.Tensor(s, 4, (4,), (1,))
    v["col2"] = tz.Tensor(s, 2, (3,), (4,))
    v["h"] = tz.tensor(np.array([1.5, -2.0], np.float16))
    v["i64"] = tz.tensor(np.array([7, 8], np.int64))
    tz.save({"state_dict": v}, os.path.join(out, "views.ckpt"))
    print("wrote test variants to", out)


if __name__ == "__main__":
    main()
