#!/usr/bin/python3
"""Procedural captioned pictures for the sdvk demo model (no downloads).

One picture = one shape (circle, square, triangle) of a named colour and size
at a named position on a plain background of another named colour, 64x64,
anti-aliased by 4x supersampling. The caption names the shape and its colour
and, each with some probability, its size, position and background, so short
prompts ("a red circle on a blue background") and long ones both occur in
training. Everything is drawn from a numpy Generator: same seed, same pictures.

The palette and positions here are the contract the semantic test
(tests/test_semantic.c) measures against; keep the two in step.
"""
import numpy as np

SIZE = 64
# Named colours, far apart in RGB so a generated pixel is classified without
# ambiguity (nearest palette entry).
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 210, 40),
    "purple": (140, 60, 190),
    "white": (240, 240, 240),
}
COLOUR_NAMES = list(COLOURS)
SHAPES = ["circle", "square", "triangle"]
SIZES = {"small": 9.0, "large": 15.0}  # half-extent in pixels
# Position phrase -> centre (x, y) in pixels.
POSITIONS = {
    "at the top left": (18.0, 18.0),
    "at the top right": (46.0, 18.0),
    "at the bottom left": (18.0, 46.0),
    "at the bottom right": (46.0, 46.0),
    "in the center": (32.0, 32.0),
}
POSITION_NAMES = list(POSITIONS)
JITTER_POS = 3.0     # pixels
JITTER_SIZE = 0.12   # relative
JITTER_COLOUR = 12   # per channel, uniform +-


def _mask(shape, cx, cy, r, ss=4):
    """Coverage in [0,1] of a shape on the SIZE x SIZE grid (ss x ss samples per pixel)."""
    n = SIZE * ss
    c = (np.arange(n, dtype=np.float32) + 0.5) / ss
    x = c[None, :]
    y = c[:, None]
    if shape == "circle":
        m = (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    elif shape == "square":
        s = r * 0.9  # same visual area class as the circle
        m = (np.abs(x - cx) <= s) & (np.abs(y - cy) <= s)
    elif shape == "triangle":
        # upright: apex at top; vertices on a circle of radius 1.2 r
        R = 1.2 * r
        top = cy - R
        base = cy + 0.5 * R
        half = R * 0.866
        t = (y - top) / (base - top)  # 0 at apex, 1 at base
        m = (t >= 0) & (t <= 1) & (np.abs(x - cx) <= t * half)
    else:
        raise ValueError(shape)
    return m.reshape(SIZE, ss, SIZE, ss).mean(axis=(1, 3))


def sample_attrs(rng):
    colour = COLOUR_NAMES[rng.integers(len(COLOUR_NAMES))]
    bg = colour
    while bg == colour:
        bg = COLOUR_NAMES[rng.integers(len(COLOUR_NAMES))]
    return dict(shape=SHAPES[rng.integers(len(SHAPES))], colour=colour, bg=bg,
                size=list(SIZES)[rng.integers(len(SIZES))],
                pos=POSITION_NAMES[rng.integers(len(POSITION_NAMES))])


def caption_said(a, rng):
    """Full or partial caption of attributes a, and which of the optional
    attributes it names: (caption, {"size": bool, "pos": bool, "bg": bool})."""
    said = dict(size=bool(rng.random() < 0.5), pos=False, bg=False)
    words = ["a"] + ([a["size"]] if said["size"] else []) + [a["colour"], a["shape"]]
    said["pos"] = bool(rng.random() < 0.7)
    if said["pos"]:
        words.append(a["pos"])
    said["bg"] = bool(rng.random() < 0.8)
    if said["bg"]:
        words += ["on", "a", a["bg"], "background"]
    return " ".join(words), said


def caption(a, rng):
    """Full or partial caption of attributes a."""
    return caption_said(a, rng)[0]


# Attribute classes a caption states, for the text encoder's pretraining
# (tools/demo/train.py): (attribute, its values); each gets one more class,
# "not said", the last, for captions that leave it out (and for "").
LABELS = (("colour", COLOUR_NAMES), ("shape", SHAPES), ("size", list(SIZES)), ("pos", POSITION_NAMES),
          ("bg", COLOUR_NAMES))


def labels(a, said):
    """Class index per LABELS entry for a caption of attributes a (said: from
    caption_said; None for the empty caption)."""
    out = []
    for k, values in LABELS:
        named = said is not None and said.get(k, True)
        out.append(values.index(a[k]) if named else len(values))
    return out


def render(a, rng):
    """uint8 [SIZE, SIZE, 3] picture of attributes a (jittered)."""
    cx, cy = POSITIONS[a["pos"]]
    cx += rng.uniform(-JITTER_POS, JITTER_POS)
    cy += rng.uniform(-JITTER_POS, JITTER_POS)
    r = SIZES[a["size"]] * (1 + rng.uniform(-JITTER_SIZE, JITTER_SIZE))
    fg = np.array(COLOURS[a["colour"]], np.float32) + rng.uniform(-JITTER_COLOUR, JITTER_COLOUR, 3)
    bg = np.array(COLOURS[a["bg"]], np.float32) + rng.uniform(-JITTER_COLOUR, JITTER_COLOUR, 3)
    m = _mask(a["shape"], cx, cy, r)[:, :, None]
    img = m * fg + (1 - m) * bg
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def batch(rng, n):
    """n pictures: (uint8 [n,64,64,3], captions, attrs)."""
    imgs, caps, attrs = [], [], []
    for _ in range(n):
        a = sample_attrs(rng)
        imgs.append(render(a, rng))
        caps.append(caption(a, rng))
        attrs.append(a)
    return np.stack(imgs), caps, attrs


def all_caption_words():
    """Captions covering every word, for the tokenizer trainer."""
    rng = np.random.default_rng(0)
    return [caption(sample_attrs(rng), rng) for _ in range(20000)]


if __name__ == "__main__":
    import sys
    from PIL import Image
    rng = np.random.default_rng(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    imgs, caps, _ = batch(rng, 16)
    grid = imgs.reshape(4, 4, SIZE, SIZE, 3).transpose(0, 2, 1, 3, 4).reshape(4 * SIZE, 4 * SIZE, 3)
    Image.fromarray(grid).resize((512, 512), Image.NEAREST).save("/tmp/demo_data.png")
    print("\n".join(caps))
