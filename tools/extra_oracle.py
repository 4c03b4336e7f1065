"""diffusers as the oracle for sdvk's extra networks (LoRA, textual-inversion
embeddings, clip skip): the UNet eps and the CLIP context of an SD v1.x
checkpoint with LoRAs loaded by diffusers' load_lora_weights, embeddings by
load_textual_inversion. Used by tools/make_extra_goldens.py (tiny model,
committed goldens) and tools/check_extra_full.py (full-size layout).

Needs the oracle venv with peft (diffusers' LoRA backend). The models are
built from the checkpoint by tools/make_variants.py (diffusers' own
single-file conversion), in float32.

LoRA modes:
  unfused  load_lora_weights + set_adapters(names, weights): PEFT adds
           w * scale * B(A x) beside each base layer at run time, an
           independent computation from sdvk's merge into the weights.
  fused    the same, then fuse_lora: the deltas merged into the weights in
           float32 (what sdvk does).
"""
import atexit
import gzip
import json
import os
import shutil
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_variants as mv  # noqa: E402

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def _bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def hf_tokenizer(bpe_gz, out_dir):
    """transformers' CLIPTokenizer from OpenAI's bpe_simple_vocab_16e6.txt.gz
    (vocab.json + merges.txt made the way CLIP's SimpleTokenizer builds its
    encoder), padding with <|endoftext|> as SD v1 does."""
    from transformers import CLIPTokenizer
    lines = gzip.open(bpe_gz).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1:49152 - 256 - 2 + 1]]
    vocab = list(_bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += [BOS, EOS]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({v: i for i, v in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for m in merges:
            f.write(" ".join(m) + "\n")
    return CLIPTokenizer(os.path.join(out_dir, "vocab.json"), os.path.join(out_dir, "merges.txt"),
                         pad_token=EOS, model_max_length=77)


def _peft_ok():
    # transformers insists on peft >= 0.22 for text-encoder adapters; the
    # newest peft on PyPI here is 0.21.2, whose API it uses is the same.
    import transformers.integrations.peft as tip
    tip.check_peft_version = lambda *a, **k: None


class Oracle:
    """One SD v1.x checkpoint as diffusers models (float32)."""

    def __init__(self, model_path, vocab_gz=None):
        import torch
        _peft_ok()
        torch.set_grad_enabled(False)
        self.model_path = model_path
        self.vocab_gz = vocab_gz
        self._tmp = tempfile.mkdtemp(prefix="sdvk_oracle_")
        atexit.register(shutil.rmtree, self._tmp, True)
        if vocab_gz:
            hf_tokenizer(vocab_gz, os.path.join(self._tmp, "tok"))
        self.pipe = None
        self.loaded = {}
        self.dirty = False

    def build(self):
        """A fresh pipeline (no LoRA, no embedding)."""
        import torch
        from diffusers import DDIMScheduler, StableDiffusionPipeline
        self.pipe = None
        sd, meta = mv.load_torch(self.model_path)
        sd = {k: (t.float() if t.is_floating_point() else t) for k, t in sd.items()}
        unet, vae, te = mv.build_diffusers(sd, meta)
        del sd
        tok = None  # a fresh one: load_textual_inversion adds tokens to it
        if self.vocab_gz:
            from transformers import CLIPTokenizer
            d = os.path.join(self._tmp, "tok")
            tok = CLIPTokenizer(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt"),
                                pad_token=EOS, model_max_length=77)
        self.pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet,
                                            scheduler=DDIMScheduler(clip_sample=False, steps_offset=1), safety_checker=None,
                                            feature_extractor=None, requires_safety_checker=False)
        self.pipe.unet.eval()
        self.pipe.text_encoder.eval()
        self.loaded = {}
        self.emb_names = []
        torch.manual_seed(0)

    # ---- LoRA ----

    def set_loras(self, loras, fused=False):
        """loras: [(file, te_weight, unet_weight)]. Unfused: adapters loaded
        once and switched with set_adapters; fused: a fresh pipeline, then
        fuse_lora."""
        if fused or self.pipe is None or self.dirty:
            self.build()
        self.dirty = fused  # fused weights and embeddings stay: the next call rebuilds
        names, weights = [], []
        for f, wte, wu in loras:
            if f not in self.loaded:
                n = "l%d" % len(self.loaded)
                self.pipe.load_lora_weights(f, adapter_name=n)
                self.loaded[f] = n
            names.append(self.loaded[f])
            weights.append({"unet": wu, "text_encoder": wte} if wte != wu else wu)
        if names:
            self.pipe.set_adapters(names, adapter_weights=weights)
            if fused:
                self.pipe.fuse_lora(components=["unet", "text_encoder"], lora_scale=1.0,
                                    adapter_names=names)
                self.pipe.unload_lora_weights()  # drops the adapters, keeps the fused weights
        elif self.loaded:
            self.pipe.disable_lora()

    # ---- the two networks ----

    def unet(self, latent, t, context):
        import torch
        out = self.pipe.unet(torch.from_numpy(latent), torch.tensor([float(t)] * latent.shape[0]),
                             encoder_hidden_states=torch.from_numpy(context)).sample
        return out.float().numpy()

    def clip_ids(self, ids, clip_skip=1):
        """A1111 clip skip N: N = 1 the last layer, N = 2 the penultimate
        one with the final layer norm = diffusers' clip_skip N - 1
        (encode_prompt: hidden_states[-(clip_skip + 1)], then final_layer_norm)."""
        import torch
        te = self.pipe.text_encoder
        x = torch.from_numpy(np.asarray(ids, np.int64))
        if clip_skip <= 1:
            return te(x)[0].float().numpy()
        hs = te(x, output_hidden_states=True).hidden_states[-(clip_skip - 1 + 1)]
        tm = te.text_model if hasattr(te, "text_model") else te
        return tm.final_layer_norm(hs).float().numpy()

    # ---- textual inversion ----

    def load_embedding(self, path, name):
        """diffusers' load_textual_inversion. A1111 names an embedding by its
        file name; diffusers refuses a token that is already a vocabulary
        entry (such as "emb"), so it gets the token "<name>" and prompt_ids
        spells the word that way."""
        self.dirty = True
        self.pipe.load_textual_inversion(path, token="<%s>" % name, tokenizer=self.pipe.tokenizer,
                                         text_encoder=self.pipe.text_encoder)
        self.emb_names.append(name)

    def prompt_ids(self, prompt):
        """ids [1, 77] of a plain prompt, embedding names as whole words replaced
        by their tokens, multi-vector tokens expanded by diffusers'
        maybe_convert_prompt."""
        import re
        for n in self.emb_names:
            prompt = re.sub(r"(?<![\w<])%s(?![\w>])" % re.escape(n), "<%s>" % n, prompt)
        p = self.pipe.maybe_convert_prompt(prompt, self.pipe.tokenizer)
        return self.pipe.tokenizer(p, padding="max_length", max_length=77, truncation=True,
                                   return_tensors="np").input_ids.astype(np.int64)


def rel_l2(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))
