#!/usr/bin/env python3
"""The same SD v1.x weights in the other forms people have, made by the tools
that make them in the wild (needs the oracle venv: torch 2.x, diffusers,
transformers; no hub access).

    make_variants.py ckpt MODEL.safetensors -o OUT.ckpt
        torch.save({'state_dict': ...}) of every tensor (dtypes kept).
    make_variants.py diffusers MODEL.safetensors -o DIR [--variant fp16]
        UNet2DConditionModel / AutoencoderKL / CLIPTextModel built from the
        SD v1.5 configs (sizes taken from MODEL's shapes, so the tiny layout
        works too), the weights converted by diffusers' own single-file
        conversion (convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint,
        convert_ldm_clip_checkpoint), each saved with save_pretrained.
    make_variants.py vae MODEL.safetensors -o OUT [--form plain|prefixed|ckpt|diffusers]
        MODEL's VAE alone: keys without first_stage_model. (plain, like
        vae-ft-mse-840000-ema-pruned.safetensors), with it, as a .ckpt with
        a loss.* extra, or as a diffusers AutoencoderKL folder.
    make_variants.py malicious -o OUT.ckpt --marker PATH
        A torch.save file whose pickle calls os.system("touch PATH") when
        loaded by an unrestricted unpickler (torch.load(weights_only=False)).
    make_variants.py seeds -o DIR
        Small real torch.save files (tests/fuzz/corpus/ckpt seeds); runs
        under /usr/bin/python3 (torch 1.13) too.
    make_variants.py manifest DIR MODEL.safetensors -o MANIFEST.json
        For each tensor of a diffusers folder made from MODEL: its file, name,
        shape, and the MODEL key whose bytes it holds (found by content, so
        the map is diffusers', not sdvk's). tests/data/tiny/diffusers/ holds
        this for the tiny model; tools/make_test_variants.py rebuilds the
        folder from it without diffusers.
"""
import argparse
import collections
import hashlib
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

UNET = "model.diffusion_model."
VAE = "first_stage_model."
CLIP = "cond_stage_model.transformer."


def load_torch(path):
    """MODEL.safetensors -> {key: torch tensor} (dtypes kept, BF16 included)."""
    import torch
    st = st_io.SafeTensors(path)
    out = collections.OrderedDict()
    for k in st.keys():
        raw = np.array(st.raw(k))
        if st.dtype(k) == "BF16":
            out[k] = torch.from_numpy(raw.view(np.int16)).view(torch.bfloat16)
        else:
            out[k] = torch.from_numpy(raw)
    return out, st.metadata


def cmd_ckpt(a):
    import torch
    sd, _ = load_torch(a.model)
    torch.save({"state_dict": sd, "global_step": 1, "epoch": 0}, a.output)
    print("wrote", a.output, len(sd), "tensors")


# ---- diffusers ----

SD15_UNET = {
    "_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                         "DownBlock2D"],
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4,
    "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
    "out_channels": 4, "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                       "CrossAttnUpBlock2D"],
}
SD15_VAE = {
    "_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4, "in_channels": 3, "latent_channels": 4,
    "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3, "sample_size": 512,
    "up_block_types": ["UpDecoderBlock2D"] * 4, "scaling_factor": 0.18215,
}
SD15_CLIP = {
    "architectures": ["CLIPTextModel"], "attention_dropout": 0.0, "bos_token_id": 0,
    "dropout": 0.0, "eos_token_id": 2, "hidden_act": "quick_gelu", "hidden_size": 768,
    "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 3072,
    "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "model_type": "clip_text_model",
    "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 1, "projection_dim": 768,
    "vocab_size": 49408,
}


def configs_from_shapes(sd, meta):
    """SD v1.5 configs with the sizes of this checkpoint (the tiny layout too)."""
    u = dict(SD15_UNET)
    ch = sd[UNET + "input_blocks.0.0.weight"].shape[0]
    mult, attn, nres, blk, level, n = [], [], None, 1, 0, 0
    while True:
        if UNET + "input_blocks.%d.0.op.weight" % blk in sd:
            nres = n if nres is None else nres
            level, n, blk = level + 1, 0, blk + 1
            continue
        k = UNET + "input_blocks.%d.0.in_layers.2.weight" % blk
        if k not in sd:
            break
        if n == 0:
            mult.append(sd[k].shape[0] // ch)
            attn.append(UNET + "input_blocks.%d.1.proj_in.weight" % blk in sd)
        n, blk = n + 1, blk + 1
    nres = n if nres is None else nres
    u["block_out_channels"] = [ch * m for m in mult]
    u["layers_per_block"] = nres
    u["down_block_types"] = ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attn]
    u["up_block_types"] = ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)]
    ctx = None
    for k in sd:
        if k.startswith(UNET) and k.endswith("attn2.to_k.weight"):
            ctx = sd[k].shape[1]
            break
    u["cross_attention_dim"] = ctx
    u["attention_head_dim"] = int(meta.get("sdvk.unet.num_heads", 8))
    u["in_channels"] = sd[UNET + "input_blocks.0.0.weight"].shape[1]
    u["out_channels"] = sd[UNET + "out.2.weight"].shape[0]

    v = dict(SD15_VAE)
    vch = sd[VAE + "encoder.conv_in.weight"].shape[0]
    vm, i = [], 0
    while VAE + "encoder.down.%d.block.0.conv2.weight" % i in sd:
        vm.append(sd[VAE + "encoder.down.%d.block.0.conv2.weight" % i].shape[0] // vch)
        i += 1
    r = 0
    while VAE + "encoder.down.0.block.%d.conv1.weight" % r in sd:
        r += 1
    v["block_out_channels"] = [vch * m for m in vm]
    v["down_block_types"] = ["DownEncoderBlock2D"] * len(vm)
    v["up_block_types"] = ["UpDecoderBlock2D"] * len(vm)
    v["layers_per_block"] = r
    v["latent_channels"] = sd[VAE + "decoder.conv_in.weight"].shape[1]

    c = dict(SD15_CLIP)
    tok = sd[CLIP + "text_model.embeddings.token_embedding.weight"]
    c["vocab_size"], c["hidden_size"] = tok.shape
    c["projection_dim"] = c["hidden_size"]
    c["intermediate_size"] = sd[CLIP + "text_model.encoder.layers.0.mlp.fc1.weight"].shape[0]
    L = 0
    while CLIP + "text_model.encoder.layers.%d.self_attn.q_proj.weight" % L in sd:
        L += 1
    c["num_hidden_layers"] = L
    c["num_attention_heads"] = int(meta.get("sdvk.clip.num_heads", max(1, c["hidden_size"] // 64)))
    c["max_position_embeddings"] = sd[CLIP + "text_model.embeddings.position_embedding.weight"].shape[0]
    return u, v, c


def _assign(model, sd, what):
    """Load sd into a model built on the meta device (no second copy of the
    weights); every parameter must be given, nothing may be left over."""
    want = model.state_dict()
    sd = {k: t for k, t in sd.items() if k in want or not k.endswith("position_ids")}
    missing = sorted(set(want) - set(sd))
    extra = sorted(set(sd) - set(want))
    if missing or extra:
        raise SystemExit("%s: missing %s, unexpected %s" % (what, missing[:5], extra[:5]))
    model.load_state_dict(sd, strict=True, assign=True)
    # Non-persistent buffers are not in any state dict and stay on the meta
    # device: CLIP's position_ids is the only one in these models.
    import torch
    for name, buf in list(model.named_buffers()):
        if buf.is_meta:
            owner = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
            leaf = name.rsplit(".", 1)[-1]
            if leaf != "position_ids":
                raise SystemExit("%s: buffer %s has no data" % (what, name))
            owner.register_buffer(leaf, torch.arange(buf.shape[-1]).expand(buf.shape), persistent=False)
    return model


def build_diffusers(sd, meta):
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import (convert_ldm_clip_checkpoint,
                                                     convert_ldm_unet_checkpoint,
                                                     convert_ldm_vae_checkpoint)
    from transformers import CLIPTextConfig, CLIPTextModel
    ucfg, vcfg, ccfg = configs_from_shapes(sd, meta)
    ucfg_m = {k: v for k, v in ucfg.items() if not k.startswith("_")}
    vcfg_m = {k: v for k, v in vcfg.items() if not k.startswith("_")}
    with torch.device("meta"):
        unet = UNet2DConditionModel(**ucfg_m)
        vae = AutoencoderKL(**vcfg_m)
        te = CLIPTextModel(CLIPTextConfig(**{k: v for k, v in ccfg.items() if k != "architectures"}))
    unet = _assign(unet, convert_ldm_unet_checkpoint(sd, ucfg_m), "unet")
    vae = _assign(vae, convert_ldm_vae_checkpoint(sd, vcfg_m), "vae")
    tsd = convert_ldm_clip_checkpoint(sd)
    if not hasattr(te, "text_model"):
        # transformers >= 5.6 flattened CLIPTextModel (no text_model. level);
        # diffusers' own loader strips the prefix the same way.
        tsd = {k[len("text_model."):] if k.startswith("text_model.") else k: t for k, t in tsd.items()}
    te = _assign(te, tsd, "text_encoder")
    return unet, vae, te


def cmd_diffusers(a):
    sd, meta = load_torch(a.model)
    unet, vae, te = build_diffusers(sd, meta)
    os.makedirs(a.output, exist_ok=True)
    kw = dict(safe_serialization=True)
    if a.variant:
        kw["variant"] = a.variant
    unet.save_pretrained(os.path.join(a.output, "unet"), **kw)
    vae.save_pretrained(os.path.join(a.output, "vae"), **kw)
    te.save_pretrained(os.path.join(a.output, "text_encoder"), **kw)
    import diffusers
    with open(os.path.join(a.output, "model_index.json"), "w") as f:
        json.dump({"_class_name": "StableDiffusionPipeline", "_diffusers_version": diffusers.__version__,
                   "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
                   "text_encoder": ["transformers", "CLIPTextModel"]}, f, indent=2)
    print("wrote", a.output)


def cmd_vae(a):
    import torch
    sd, meta = load_torch(a.model)
    vae = collections.OrderedDict((k[len(VAE):], t) for k, t in sd.items() if k.startswith(VAE))
    if a.form == "plain":
        st_write_torch(a.output, vae)
    elif a.form == "prefixed":
        st_write_torch(a.output, collections.OrderedDict((VAE + k, t) for k, t in vae.items()))
    elif a.form == "ckpt":
        d = collections.OrderedDict(vae)
        d["loss.logvar"] = torch.zeros(())  # what vae-ft-mse .ckpt files carry besides the VAE
        torch.save({"state_dict": d}, a.output)
    else:
        _, vcfg, _ = configs_from_shapes(sd, meta)
        from diffusers import AutoencoderKL
        from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
        vcfg_m = {k: v for k, v in vcfg.items() if not k.startswith("_")}
        with torch.device("meta"):
            m = AutoencoderKL(**vcfg_m)
        _assign(m, convert_ldm_vae_checkpoint(sd, vcfg_m), "vae").save_pretrained(a.output)
    print("wrote", a.output)


def st_write_torch(path, d):
    from safetensors.torch import save_file
    save_file({k: t.contiguous() for k, t in d.items()}, path)


class _Evil:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def cmd_malicious(a):
    import torch
    sd = collections.OrderedDict()
    sd["model.diffusion_model.time_embed.0.weight"] = torch.zeros(4, 4)
    sd["payload"] = _Evil("touch " + a.marker)
    torch.save({"state_dict": sd}, a.output)
    print("wrote", a.output)


def cmd_seeds(a):
    """Small real torch.save files (fuzz seeds, and checked by test_loaders
    unit): views, dtypes, a Parameter, a scalar, nesting; runs under any
    python with torch (Debian's 1.13 or the venv's 2.x)."""
    import torch
    os.makedirs(a.output, exist_ok=True)
    tag = "torch" + torch.__version__.split("+")[0].replace(".", "")[:3]
    x = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    sd = collections.OrderedDict()
    sd["a"] = x
    sd["a_t"] = x.t()          # non-contiguous view of the same storage
    sd["row1"] = x[1]          # storage offset 4
    sd["h"] = torch.tensor([1.5, -2.0], dtype=torch.float16)
    sd["bf"] = torch.tensor([1.0, -3.0], dtype=torch.bfloat16)
    sd["f64"] = torch.tensor([1.0], dtype=torch.float64)
    sd["i64"] = torch.tensor([7, 8], dtype=torch.int64)
    sd["scalar"] = torch.tensor(2.5)
    sd["param"] = torch.nn.Parameter(torch.full((2,), 0.25))
    sd["nested"] = {"inner": torch.tensor([4.0])}
    torch.save({"state_dict": sd, "global_step": 3, "lr": 1e-4, "name": "seed", "flag": True,
                "none": None, "tup": (1, "x")}, os.path.join(a.output, tag + "_views.ckpt"))
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": torch.ones(2, 4)},
                "name": "e", "step": 1}, os.path.join(a.output, tag + "_emb.pt"))
    sd2 = collections.OrderedDict()
    sd2["model.diffusion_model.time_embed.0.weight"] = torch.zeros(2, 2)
    sd2["payload"] = _Evil("true")
    torch.save({"state_dict": sd2}, os.path.join(a.output, tag + "_evil.ckpt"))
    print("wrote seeds to", a.output)


def _digest(b):
    return hashlib.sha256(b).hexdigest()


def cmd_manifest(a):
    src = st_io.SafeTensors(a.model)
    by_hash = collections.defaultdict(list)
    for k in src.keys():
        by_hash[(_digest(np.array(src.raw(k)).tobytes()), src.dtype(k))].append(k)
    out = {"source": os.path.basename(a.model), "files": []}
    for comp in ("unet", "vae", "text_encoder"):
        d = os.path.join(a.dir, comp)
        for fn in sorted(os.listdir(d)):
            p = os.path.join(d, fn)
            if fn.endswith(".json"):
                continue
            st = st_io.SafeTensors(p)
            ent = {"file": comp + "/" + fn, "metadata": st.metadata, "tensors": []}
            for k in st.keys():
                h = (_digest(np.array(st.raw(k)).tobytes()), st.dtype(k))
                cands = by_hash.get(h, [])
                if len(cands) != 1:
                    raise SystemExit("%s %s: %d source tensors with these bytes" % (p, k, len(cands)))
                ent["tensors"].append([k, cands[0], list(st.shape(k))])
            out["files"].append(ent)
    with open(a.output, "w") as f:
        json.dump(out, f, indent=0, sort_keys=False)
        f.write("\n")
    for comp in ("unet", "vae", "text_encoder"):
        dst = os.path.join(os.path.dirname(os.path.abspath(a.output)), comp)
        os.makedirs(dst, exist_ok=True)
        shutil.copy(os.path.join(a.dir, comp, "config.json"), os.path.join(dst, "config.json"))
    print("wrote", a.output, sum(len(e["tensors"]) for e in out["files"]), "tensors")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = ap.add_subparsers(dest="cmd", required=True)
    p = sp.add_parser("ckpt")
    p.add_argument("model")
    p.add_argument("-o", "--output", required=True)
    p = sp.add_parser("diffusers")
    p.add_argument("model")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--variant")
    p = sp.add_parser("vae")
    p.add_argument("model")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--form", choices=["plain", "prefixed", "ckpt", "diffusers"], default="plain")
    p = sp.add_parser("malicious")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--marker", required=True)
    p = sp.add_parser("seeds")
    p.add_argument("-o", "--output", required=True)
    p = sp.add_parser("manifest")
    p.add_argument("dir")
    p.add_argument("model")
    p.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    globals()["cmd_" + a.cmd](a)


if __name__ == "__main__":
    main()
