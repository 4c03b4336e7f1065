#!/usr/bin/env python3
"""Random LoRAs and textual-inversion embeddings for an SD v1.x checkpoint
(tiny or full layout), plus numpy goldens of merged weights.

    make_lora.py MODEL.safetensors -o DIR [--goldens]

Needs the oracle venv with peft (diffusers' LoRA backend). Module names come
from diffusers' own models (built from MODEL by tools/make_variants.py's
diffusers conversion), never from sdvk's key map; a module's LDM key is the
MODEL tensor its diffusers parameter *is* (same storage), not a renaming.

Writes into DIR:
  lora_kohya_r8.safetensors   kohya/A1111 keys (lora_unet_*/lora_te_*,
                              lora_down/lora_up/alpha), rank 8, alpha 4 (F32
                              scalar), F16 weights: UNet attention q/k/v/out,
                              proj_in/proj_out (1x1 conv LoRA), the text
                              encoder's q/k/v/out_proj, and
                              one LoCon layer (down_blocks.0.resnets.0.conv1:
                              down [8, in, 3, 3], up [out, 8, 1, 1]).
  lora_kohya_r32.safetensors  rank 32, alpha 16 (F16 scalar), a subset
                              (attn1/attn2 to_q, text q_proj/out_proj).
  lora_peft_r8.safetensors    written by diffusers' save_lora_weights from
                              PEFT adapters (lora_alpha 4, init_lora_weights
                              False): unet.…lora_A/lora_B, text_encoder.…,
                              alpha in the lora_adapter_metadata.
  lora_old_procs.safetensors  the older diffusers attention-processor names
                              (…processor.to_q_lora.down.weight,
                              …lora_linear_layer.up.weight), scale 1.
  lora_kohya_ldm.safetensors  kohya keys spelled with LDM paths
                              (lora_unet_input_blocks_1_1_proj_in).
  lora_kohya_ldm.pt           lora_kohya_ldm through torch.save.
  emb_a1111.pt                {'string_to_param': {'*': [3, W]}, ...}
  emb.safetensors             {'emb_params': [2, W]}
  emb_diffusers.bin           {'<tok>': [W]} (learned_embeds.bin)
With --goldens also manifest.json and golden_*.npy: merged float32 weights
W + w * alpha / r * up @ down (numpy, float64 product) for some targets and
weights, two LoRAs together included, and the embeddings' vectors.
"""
import argparse
import collections
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_variants as mv  # noqa: E402


def rnd(rng, shape, scale):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def modules(unet, te, sd):
    """[(prefix, diffusers module path, LDM weight key, weight shape)] of every
    Linear/Conv2d, found by storage identity with MODEL's tensors."""
    import torch
    by_ptr = {t.data_ptr(): k for k, t in sd.items() if t.numel() > 1}
    out = []
    for prefix, model in (("unet", unet), ("te", te)):
        for name, m in model.named_modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                k = by_ptr.get(m.weight.data_ptr())
                if k is None:
                    raise SystemExit("no MODEL tensor for %s.%s" % (prefix, name))
                out.append((prefix, name, k, tuple(m.weight.shape)))
    return out


def te_kohya(name):
    # kohya spells text encoder modules with text_model. (transformers < 5.6)
    return name if name.startswith("text_model.") else "text_model." + name


def kohya_file(mods, rng, rank, alpha, alpha_dtype, pick, ldm_names=False):
    d = collections.OrderedDict()
    info = []
    for prefix, name, key, shape in mods:
        if not pick(prefix, name, shape):
            continue
        out_c, in_c = shape[0], shape[1]
        k = shape[2:] if len(shape) == 4 else ()
        if ldm_names:
            mod = "lora_unet_" + key[len(mv.UNET):-len(".weight")].replace(".", "_")
        elif prefix == "unet":
            mod = "lora_unet_" + name.replace(".", "_")
        else:
            mod = "lora_te_" + te_kohya(name).replace(".", "_")
        down = rnd(rng, (rank, in_c) + k, 1 / np.sqrt(in_c * max(1, int(np.prod(k)))))
        up = rnd(rng, (out_c, rank) + ((1, 1) if k else ()), 0.5 / np.sqrt(rank))
        d[mod + ".lora_down.weight"] = down.astype(np.float16)
        d[mod + ".lora_up.weight"] = up.astype(np.float16)
        d[mod + ".alpha"] = np.array(alpha, dtype=alpha_dtype)
        info.append((key, mod, alpha, rank))
    return d, info


def save_st(path, d, metadata=None):
    from safetensors.numpy import save_file
    save_file({k: np.ascontiguousarray(v) for k, v in d.items()}, path, metadata=metadata)


def delta(up, down, alpha, rank, shape):
    u = up.astype(np.float64).reshape(up.shape[0], -1)
    dn = down.astype(np.float64).reshape(down.shape[0], -1)
    return (alpha / rank) * (u @ dn).reshape(shape)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--goldens", action="store_true")
    a = ap.parse_args()
    import torch
    os.makedirs(a.output, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    sd, meta = mv.load_torch(a.model)
    unet, vae, te = mv.build_diffusers(sd, meta)
    mods = modules(unet, te, sd)

    attn_lin = ("to_q", "to_k", "to_v", "to_out.0")
    te_lin = ("q_proj", "k_proj", "v_proj", "out_proj")

    def pick8(p, n, shape):
        if p == "unet":
            return n.endswith(attn_lin) or n.endswith(("proj_in", "proj_out")) or \
                n == "down_blocks.0.resnets.0.conv1"
        return n.endswith(te_lin)

    def pick32(p, n, shape):
        if p == "unet":
            return n.endswith(("attn1.to_q", "attn2.to_q"))
        # diffusers infers the text encoder LoRA format from out_proj keys
        return n.endswith(("q_proj", "out_proj"))

    files = {}
    d8, i8 = kohya_file(mods, rng, 8, 4.0, np.float32, pick8)
    save_st(os.path.join(a.output, "lora_kohya_r8.safetensors"), d8)
    files["lora_kohya_r8.safetensors"] = (d8, i8)
    d32, i32 = kohya_file(mods, rng, 32, 16.0, np.float16, pick32)
    save_st(os.path.join(a.output, "lora_kohya_r32.safetensors"), d32)
    files["lora_kohya_r32.safetensors"] = (d32, i32)
    dl, il = kohya_file(mods, rng, 4, 2.0, np.float32,
                        lambda p, n, s: p == "unet" and n.endswith(("attn2.to_k", "proj_in")), ldm_names=True)
    save_st(os.path.join(a.output, "lora_kohya_ldm.safetensors"), dl)
    files["lora_kohya_ldm.safetensors"] = (dl, il)
    torch.save({k: torch.from_numpy(np.array(v)) for k, v in dl.items()},
               os.path.join(a.output, "lora_kohya_ldm.pt"))

    # older diffusers attention processors (no alpha: scale 1)
    do = collections.OrderedDict()
    io_ = []
    for prefix, name, key, shape in mods:
        r = 4
        if prefix == "unet" and name.endswith(("attn1.to_q", "attn2.to_out.0")):
            base, which = name.rsplit(".", 1) if not name.endswith("to_out.0") else (name[:-len(".to_out.0")], "to_out")
            mod = "%s.processor.%s_lora" % (base, which)
        elif prefix == "te" and name.endswith(("self_attn.k_proj", "mlp.fc2")):
            mod = "text_encoder.%s.lora_linear_layer" % te_kohya(name)
        else:
            continue
        dn = rnd(rng, (r, shape[1]), 1 / np.sqrt(shape[1]))
        upw = rnd(rng, (shape[0], r), 0.5 / np.sqrt(r))
        do[mod + ".down.weight"] = dn
        do[mod + ".up.weight"] = upw
        io_.append((key, mod, float(r), r))
    save_st(os.path.join(a.output, "lora_old_procs.safetensors"), do)
    old_pairs = {}
    for k, v in do.items():
        old_pairs.setdefault(k.rsplit(".", 2)[0], {})[k.rsplit(".", 2)[1]] = v

    # PEFT through diffusers' own writer
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    unet_f = unet.float()
    te_f = te.float()
    torch.manual_seed(a.seed)
    ucfg = LoraConfig(r=8, lora_alpha=4, init_lora_weights=False,
                      target_modules=r".*(attn1|attn2)\.(to_q|to_v|to_out\.0)$|.*proj_in$|.*down_blocks\.0\.resnets\.0\.conv1$")
    tcfg = LoraConfig(r=8, lora_alpha=4, init_lora_weights=False, target_modules=["q_proj", "v_proj"])
    unet_f.add_adapter(ucfg)
    # transformers' own add_adapter insists on peft >= 0.22, which PyPI here
    # lacks; peft's injection is what it calls underneath.
    from peft import inject_adapter_in_model
    inject_adapter_in_model(tcfg, te_f, adapter_name="default")
    te_f.peft_config = {"default": tcfg}
    with torch.no_grad():
        for m in (unet_f, te_f):
            for n, p in m.named_parameters():
                if "lora_B" in n:
                    p.mul_(0.5)
    ul = {k: v.half() for k, v in get_peft_model_state_dict(unet_f).items()}
    tl = {k: v.half() for k, v in get_peft_model_state_dict(te_f, adapter_name="default").items()}
    StableDiffusionPipeline.save_lora_weights(
        a.output, unet_lora_layers=ul, text_encoder_lora_layers=tl, weight_name="lora_peft_r8.safetensors",
        unet_lora_adapter_metadata=unet_f.peft_config["default"].to_dict(),
        text_encoder_lora_adapter_metadata=te_f.peft_config["default"].to_dict())

    # embeddings
    width = sd[mv.CLIP + "text_model.embeddings.token_embedding.weight"].shape[1]
    e3 = rnd(rng, (3, width), 0.02)
    e2 = rnd(rng, (2, width), 0.02)
    e1 = rnd(rng, (width,), 0.02)
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": torch.from_numpy(e3)},
                "name": "emb_a1111", "step": 100, "sd_checkpoint": None, "sd_checkpoint_name": None},
               os.path.join(a.output, "emb_a1111.pt"))
    save_st(os.path.join(a.output, "emb.safetensors"), {"emb_params": e2})
    torch.save({"<cat-toy>": torch.from_numpy(e1)}, os.path.join(a.output, "emb_diffusers.bin"))
    print("wrote LoRAs and embeddings to", a.output)
    if not a.goldens:
        return

    # ---- goldens ----
    def f32(key):
        t = sd[key]
        return (t.float() if t.dtype != torch.float32 else t).numpy().astype(np.float32)

    def kohya_delta(d, info_row):
        key, mod, alpha, rank = info_row
        return delta(d[mod + ".lora_up.weight"], d[mod + ".lora_down.weight"],
                     float(np.asarray(d[mod + ".alpha"], np.float64)), rank, sd[key].shape)

    man = {"model": os.path.basename(a.model), "loras": [], "multi": [], "embeddings": []}
    gi = [0]

    def golden(arr):
        name = "golden_%03d.npy" % gi[0]
        gi[0] += 1
        np.save(os.path.join(a.output, name), arr.astype(np.float32))
        return name

    def pick_rows(info, n):
        # a spread: first, last, a conv, a text encoder one
        sel = [info[0], info[-1]]
        sel += [r for r in info if len(sd[r[0]].shape) == 4][:2]
        sel += [r for r in info if r[0].startswith(mv.CLIP)][:1]
        seen, out = set(), []
        for r in sel:
            if r[0] not in seen:
                seen.add(r[0])
                out.append(r)
        return out[:n]

    for fname, weight in (("lora_kohya_r8.safetensors", 1.0), ("lora_kohya_ldm.pt", -0.7),
                          ("lora_kohya_r32.safetensors", 0.5), ("lora_kohya_ldm.safetensors", 1.0)):
        d, info = files[fname.replace(".pt", ".safetensors")]
        ent = {"file": fname, "n_mods": len(info),
               "n_unet": sum(1 for r in info if r[0].startswith(mv.UNET)),
               "n_te": sum(1 for r in info if r[0].startswith(mv.CLIP)), "checks": []}
        for row in pick_rows(info, 3):
            m = f32(row[0]) + weight * kohya_delta(d, row)
            ent["checks"].append({"target": row[0], "weight": weight, "golden": golden(m)})
        man["loras"].append(ent)
    # old processors: scale 1
    ent = {"file": "lora_old_procs.safetensors", "n_mods": len(io_),
           "n_unet": sum(1 for r in io_ if r[0].startswith(mv.UNET)),
           "n_te": sum(1 for r in io_ if r[0].startswith(mv.CLIP)), "checks": []}
    for key, mod, alpha, rank in io_:
        pr = old_pairs[mod]
        m = f32(key) + 0.5 * delta(pr["up"], pr["down"], alpha, rank, sd[key].shape)
        ent["checks"].append({"target": key, "weight": 0.5, "golden": golden(m)})
    man["loras"].append(ent)
    # PEFT: the file as diffusers wrote it, alpha 4 / rank 8
    from safetensors.numpy import load_file
    pf = load_file(os.path.join(a.output, "lora_peft_r8.safetensors"))
    ent = {"file": "lora_peft_r8.safetensors", "checks": []}
    targets = []
    for prefix, name, key, shape in mods:
        p = ("unet." if prefix == "unet" else "text_encoder.") + name
        if p + ".lora_A.weight" in pf:
            targets.append((key, p))
    ent["n_mods"] = len(targets)
    ent["n_unet"] = sum(1 for k, _ in targets if k.startswith(mv.UNET))
    ent["n_te"] = len(targets) - ent["n_unet"]
    for key, p in [targets[0], targets[-1]] + [t for t in targets if len(sd[t[0]].shape) == 4][:1]:
        m = f32(key) + 1.0 * delta(pf[p + ".lora_B.weight"], pf[p + ".lora_A.weight"], 4.0, 8, sd[key].shape)
        ent["checks"].append({"target": key, "weight": 1.0, "golden": golden(m)})
    man["loras"].append(ent)
    # two LoRAs on one weight: r8 at 0.5 and r32 at -0.7
    common = sorted(set(r[0] for r in i8) & set(r[0] for r in i32))[:2]
    r8 = {r[0]: r for r in i8}
    r32 = {r[0]: r for r in i32}
    for key in common:
        m = f32(key) + 0.5 * kohya_delta(d8, r8[key]) - 0.7 * kohya_delta(d32, r32[key])
        man["multi"].append({"target": key, "loras": [["lora_kohya_r8.safetensors", 0.5],
                                                      ["lora_kohya_r32.safetensors", -0.7]],
                             "golden": golden(m)})
    for fname, arr in (("emb_a1111.pt", e3), ("emb.safetensors", e2), ("emb_diffusers.bin", e1[None])):
        man["embeddings"].append({"file": fname, "width": int(width), "n": int(arr.shape[0]),
                                  "golden": golden(arr)})
    with open(os.path.join(a.output, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1)
        f.write("\n")
    print("wrote", gi[0], "goldens")


if __name__ == "__main__":
    main()
