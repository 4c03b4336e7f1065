#!/usr/bin/python3
"""Does the demo model use the position words at all?

    tools/demo/probe_position.py [MODEL_DIR] [--seeds N]

Samples the same seeds (PyTorch, DDPM 20 steps, CFG 7.5, as train.py's
preview) for one shape/colour/background prompt at each of the five
positions and prints, per prompt, the mean centroid of the shape (pixels far
from the border's median colour) and how far each picture is from the
"at the top left" picture of the same seed. A model that follows the
position words moves the centroid to the named quadrant; one that ignores
them draws the same picture for every position (distance ~0).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import bpe  # noqa: E402
import data  # noqa: E402
import model as M  # noqa: E402
import st_io  # noqa: E402


def load(d):
    st = st_io.SafeTensors(os.path.join(d, "sdvk-demo.safetensors"))
    sd = M.SD(json.loads(st.metadata["sdvk.config"]))
    sd.load_state_dict({k: torch.from_numpy(np.array(st.f32(k))) for k in st.keys()})
    return sd.eval(), float(st.metadata["sdvk.vae.scale_factor"]), bpe.Tokenizer(os.path.join(d, "tokenizer"))


def centroids(img):
    """[N,3,H,W] in [-1,1] -> [N,2] (x, y) of the pixels far from the border median."""
    x = (img.clamp(-1, 1) + 1) * 127.5
    border = torch.cat([x[:, :, 0], x[:, :, -1], x[:, :, :, 0], x[:, :, :, -1]], 2).median(2).values
    far = ((x - border[:, :, None, None]) ** 2).sum(1).sqrt() > 80
    ys, xs = torch.meshgrid(torch.arange(x.shape[2]).float(), torch.arange(x.shape[3]).float(), indexing="ij")
    m = far.float().sum((1, 2)).clamp(min=1)
    return torch.stack([(far * xs).sum((1, 2)) / m, (far * ys).sum((1, 2)) / m], 1)


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir", nargs="?", default=os.path.join(os.path.dirname(os.path.dirname(HERE)),
                                                                 "models", "demo"))
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sd, scale, tok = load(a.model_dir)
    n, lat = a.seeds, data.SIZE // 8
    cu = sd.text(torch.tensor([tok.encode("")])).expand(n, -1, -1)
    ref = None
    for pos in data.POSITION_NAMES:
        p = "a large red circle %s on a blue background" % pos
        cc = sd.text(torch.tensor([tok.encode(p)])).expand(n, -1, -1)
        img = M.ddpm_sample(sd, cc, cu, (n, 4, lat, lat), 20, 7.5, torch.Generator().manual_seed(1), scale)
        if ref is None:
            ref = img
        c = centroids(img)
        want = data.POSITIONS[pos]
        print("%-22s centroid mean (%.1f, %.1f), want (%.0f, %.0f); mean |picture - top-left picture| %.3f"
              % (pos, c[:, 0].mean(), c[:, 1].mean(), want[0], want[1], (img - ref).abs().mean()))


if __name__ == "__main__":
    main()
