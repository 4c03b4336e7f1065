#!/usr/bin/env python3
"""Goldens for the extra-networks tests (tests/extra.cmake): the tiny model's
UNet eps and CLIP context with LoRAs, textual-inversion embeddings and clip
skip, computed by diffusers (tools/extra_oracle.py; oracle venv with peft).

    make_extra_goldens.py [--tiny tests/data/tiny] [--loaders tests/data/loaders]
                          [--vocab ../shared/clip/bpe_simple_vocab_16e6.txt.gz]
                          [-o tests/data/extra] [--sdvk build/sdvk]

Writes into -o: NAME.npy per case and cases.txt, one case a line, fields
separated by tabs:
    NAME  TOL  sdvk stage arguments ...
with @TINY, @LD and @VOCAB standing for the tiny model folder, the LoRA /
embedding fixtures folder and the CLIP vocabulary. tests/test_extra.sh runs
`sdvk stage ARGS --backend cpu -m @TINY/model.safetensors -o OUT` and
compares OUT with NAME.npy (relative L2 <= TOL: 1e-4 for the UNet, 1e-3 for
CLIP). LoRAs use the fixtures of tests/data/loaders (tools/make_lora.py):
kohya rank 8 (UNet attention, proj_in/out, one LoCon 3x3 conv, text
encoder q/k/v/out), kohya rank 32, PEFT rank 8 (diffusers' own writer).
The oracle runs them as unfused PEFT adapters (set_adapters); fused
(fuse_lora) results are computed too and must agree to 1e-5.
With --sdvk, each case is also run here and its error printed.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import extra_oracle as eo  # noqa: E402

TOKENS = [49406, 320, 1125, 539, 320, 2368, 49407]  # "a photo of a cat"
UNET_TOL, CLIP_TOL = "1e-4", "1e-3"

# name -> [(fixture file, text-encoder weight, UNet weight)]
LORA_CASES = [
    ("r8_w1", [("lora_kohya_r8.safetensors", 1.0, 1.0)]),
    ("r8_w05", [("lora_kohya_r8.safetensors", 0.5, 0.5)]),
    ("r8_wm07", [("lora_kohya_r8.safetensors", -0.7, -0.7)]),
    ("r32_w1", [("lora_kohya_r32.safetensors", 1.0, 1.0)]),
    ("peft_w1", [("lora_peft_r8.safetensors", 1.0, 1.0)]),
    ("two", [("lora_kohya_r8.safetensors", 0.5, 0.5), ("lora_kohya_r32.safetensors", -0.7, -0.7)]),
    ("split", [("lora_kohya_r8.safetensors", 0.3, 0.8)]),
    ("peft_r32", [("lora_peft_r8.safetensors", -0.7, -0.7), ("lora_kohya_r32.safetensors", 0.5, 0.5)]),
]

# name -> (embedding files to load, prompt, clip skip, LoRAs as prompt tags)
EMB_CASES = [
    ("emb_pt", ["emb_a1111.pt"], "a photo of emb_a1111 on a table", 1, []),
    ("emb_st", ["emb.safetensors"], "emb , a red cat", 1, []),
    ("emb_bin", ["emb_diffusers.bin"], "a emb_diffusers in the snow", 1, []),
    ("emb_two", ["emb_a1111.pt", "emb.safetensors"], "emb_a1111 and emb together", 1, []),
    ("emb_skip2", ["emb_a1111.pt"], "a photo of emb_a1111 on a table", 2, []),
    ("emb_lora_tag", ["emb_a1111.pt"], "a photo of emb_a1111", 1, [("lora_kohya_r8", 0.5, 0.5)]),
]


def lora_args(loras):
    a = []
    for f, wte, wu in loras:
        a += ["--lora", "@LD/%s:%g" % (f, wu) if wte == wu else "@LD/%s:%g:%g" % (f, wte, wu)]
    return a


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(HERE)
    ap.add_argument("--tiny", default=os.path.join(root, "tests/data/tiny"))
    ap.add_argument("--loaders", default=os.path.join(root, "tests/data/loaders"))
    ap.add_argument("--vocab", default=os.path.join(root, "../shared/clip/bpe_simple_vocab_16e6.txt.gz"))
    ap.add_argument("-o", "--output", default=os.path.join(root, "tests/data/extra"))
    ap.add_argument("--sdvk")
    a = ap.parse_args()
    from diffusers.utils import logging as dlog
    dlog.set_verbosity_error()
    os.makedirs(a.output, exist_ok=True)
    model = os.path.join(a.tiny, "model.safetensors")
    lat = np.load(os.path.join(a.tiny, "unet_latent_b1.npy"))
    ctx = np.load(os.path.join(a.tiny, "unet_context_b1.npy"))
    ids = np.array([TOKENS + [49407] * (77 - len(TOKENS))], np.int64)
    o = eo.Oracle(model, a.vocab)
    o.set_loras([])
    base_u, base_c = o.unet(lat, 981, ctx), o.clip_ids(ids)
    unet_in = ["--latent", "@TINY/unet_latent_b1.npy", "--timestep", "981",
               "--context", "@TINY/unet_context_b1.npy"]
    tok = ["--tokens", ",".join(map(str, TOKENS))]
    lines = []

    def add(name, tol, args, arr, moved):
        np.save(os.path.join(a.output, name + ".npy"), arr.astype(np.float32))
        lines.append("\t".join([name, tol] + args))
        print("%-22s moved %.3f from the plain model" % (name, moved), flush=True)
        if moved < 1e-2:
            raise SystemExit("%s: the case barely changes the output" % name)

    L = lambda f: os.path.join(a.loaders, f)  # noqa: E731
    for name, loras in LORA_CASES:
        full = [(L(f), wte, wu) for f, wte, wu in loras]
        o.set_loras(full)
        u, c = o.unet(lat, 981, ctx), o.clip_ids(ids)
        o.set_loras(full, fused=True)
        uf, cf = o.unet(lat, 981, ctx), o.clip_ids(ids)
        d = max(eo.rel_l2(uf, u), eo.rel_l2(cf, c))
        print("%-22s fused vs unfused %.1e" % (name, d))
        if d > 1e-5:
            raise SystemExit("%s: diffusers fused and unfused differ by %.1e" % (name, d))
        add("lora_%s_unet" % name, UNET_TOL, ["unet"] + unet_in + lora_args(loras), u, eo.rel_l2(u, base_u))
        add("lora_%s_clip" % name, CLIP_TOL, ["clip"] + tok + lora_args(loras), c, eo.rel_l2(c, base_c))

    # clip skip on token ids: A1111 2 = diffusers clip_skip=1
    o.set_loras([])
    c2 = o.clip_ids(ids, clip_skip=2)
    add("clipskip2", CLIP_TOL, ["clip"] + tok + ["--clip-skip", "2"], c2, eo.rel_l2(c2, base_c))

    for name, embs, prompt, skip, tags in EMB_CASES:
        o.set_loras([(L(n + ".safetensors"), wte, wu) for n, wte, wu in tags])
        for f in embs:
            o.load_embedding(L(f), os.path.splitext(f)[0])
        pids = o.prompt_ids(prompt)
        c = o.clip_ids(pids, clip_skip=skip)
        # the same prompt without the embeddings' vectors: how far they moved it
        plain = eo.Oracle(model, a.vocab)
        plain.set_loras([(L(n + ".safetensors"), wte, wu) for n, wte, wu in tags])
        cp = plain.clip_ids(plain.prompt_ids(prompt), clip_skip=skip)
        full_prompt = "".join("<lora:%s:%g> " % (n, wu) for n, wte, wu in tags) + prompt
        args = ["clip", "--vocab", "@VOCAB", "--embd-dir", "@LD", "--prompt", full_prompt]
        if tags:
            args += ["--lora-model-dir", "@LD"]
        if skip > 1:
            args += ["--clip-skip", str(skip)]
        add(name, CLIP_TOL, args, c, eo.rel_l2(c, cp))
        o.dirty = True

    with open(os.path.join(a.output, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %d cases to %s" % (len(lines), a.output))
    if a.sdvk:
        check(a, lines)


def check(a, lines):
    sub = {"@TINY": a.tiny, "@LD": a.loaders, "@VOCAB": a.vocab}
    tmp = tempfile.mkdtemp()
    worst = 0
    for line in lines:
        f = line.split("\t")
        args = []
        for x in f[2:]:
            for k, v in sub.items():
                x = x.replace(k, v)
            args.append(x)
        out = os.path.join(tmp, f[0] + ".npy")
        subprocess.run([a.sdvk, "stage"] + args + ["--backend", "cpu", "-m", os.path.join(a.tiny, "model.safetensors"),
                                                   "-o", out], check=True)
        e = eo.rel_l2(np.load(out), np.load(os.path.join(a.output, f[0] + ".npy")))
        print("sdvk %-22s rel L2 %.2e (limit %s)" % (f[0], e, f[1]))
        worst = max(worst, e / float(f[1]))
    print("worst error / limit: %.3f" % worst)


if __name__ == "__main__":
    main()
