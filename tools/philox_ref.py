#!/usr/bin/env python3
"""Independent numpy model of torch.randn(..., device="cuda") (float32), the
second implementation that tests sdvk's SD_RNG_CUDA generator (noise_cuda.c).

    tools/.venv/bin/python tools/philox_ref.py [--out tests/data/rng]
        writes cuda.txt, cuda.npy (the manifest format of make_rng_goldens.py)
    tools/.venv/bin/python tools/philox_ref.py --compare-a1111
        how far AUTOMATIC1111's rng_philox.py formula is from this model
(any Python 3 with numpy will do; torch is not needed)

Written from the documented rules, not from the C code:
  * Philox4x32-10 (Salmon et al., SC'11; Random123): 10 rounds of
      (c0, c1, c2, c3) <- (hi(M1*c2) ^ c1 ^ k0, lo(M1*c2), hi(M0*c0) ^ c3 ^ k1, lo(M0*c0))
    with the key bumped by (W0, W1) between rounds; M0 = 0xD2511F53,
    M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85 (curand_philox4x32_x.h).
  * curand_init(seed, subsequence, offset): key = (lo32(seed), hi32(seed));
    the 128-bit counter (c0 least significant) starts at subsequence * 2^64
    + offset / 4 (offset % 4 == 0 here); each curand4() returns Philox of the
    counter and adds 1.
  * curand_normal4 = Box-Muller of (x, y) and of (z, w):
      u = x * 2^-32 + 2^-33, v = y * K + K/2 with K = (float)(2 pi) * 2^-32,
    each rounded once to float32 (the GPU's FMA; computed here exactly with
    integers), s = sqrt(-2 log u), (s sin v, s cos v) in float32, log/sin/cos
    correctly rounded to float32 from double (Python's math module).
  * PyTorch (aten/src/ATen/native/cuda/DistributionTemplates.h): 256 threads
    per block, grid = min(ceil(n / 256), cap); thread t (= subsequence t)
    loops k = 0.. while t + k*4*S < roundup(n, 4*S), S = 256 * grid, and
    stores rand[i] of its k-th curand_normal4 at t + k*4*S + i*S when < n;
    value * 1 + 0 (std, mean); afterwards the generator's offset grows by
    ((n - 1) / (4*S) + 1) * 4.
"""
import argparse
import math
import os

import numpy as np

M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
MASK32 = 0xFFFFFFFF
TWO_PI_F32_MANT = 0xC90FDB  # float32(2 pi) = 0xC90FDB * 2^-21


def philox(c, k0, k1):
    """c: 4 uint64 arrays holding 32-bit words; k0, k1: ints. Returns 4 uint64 arrays."""
    c0, c1, c2, c3 = c
    for r in range(10):
        if r:
            k0 = (k0 + W0) & MASK32
            k1 = (k1 + W1) & MASK32
        p0 = c0 * np.uint64(M0)  # < 2^64: no overflow
        p1 = c2 * np.uint64(M1)
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0), p1 & np.uint64(MASK32),
                          (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1), p0 & np.uint64(MASK32))
    return c0, c1, c2, c3


def bit_length(m):
    x = m.copy()
    bl = np.zeros(m.shape, np.int64)
    for s in (32, 16, 8, 4, 2, 1):
        big = (x >> np.uint64(s)) > 0
        x = np.where(big, x >> np.uint64(s), x)
        bl += big * s
    return bl + 1


def round_f32(m, e):
    """m * 2^e (m: uint64 array > 0, exact integers) rounded to nearest-even float32."""
    sh = np.maximum(bit_length(m) - 24, 0)
    shu = sh.astype(np.uint64)
    q = m >> shu
    rem = m - (q << shu)
    half = np.where(sh > 0, np.uint64(1) << (np.maximum(shu, np.uint64(1)) - np.uint64(1)), np.uint64(0))
    up = (sh > 0) & ((rem > half) | ((rem == half) & ((q & np.uint64(1)) == 1)))
    q = q + up.astype(np.uint64)
    return np.ldexp(q.astype(np.float64), (sh + e).astype(np.int64)).astype(np.float32)


def uint_to_f32_int(x):
    """float32(x) for uint32 x, as the exact integer it holds (uint64)."""
    xf = round_f32(np.maximum(x, np.uint64(1)), 0)
    return np.where(x == 0, np.uint64(0), xf.astype(np.float64).astype(np.uint64))


def box_muller(x, y):
    X = uint_to_f32_int(x)
    Y = uint_to_f32_int(y)
    u = round_f32(np.uint64(2) * X + np.uint64(1), -33)
    v = round_f32(np.uint64(TWO_PI_F32_MANT) * (np.uint64(2) * Y + np.uint64(1)), -54)
    lg = np.array([math.log(t) for t in u.astype(np.float64).tolist()], np.float64).astype(np.float32)
    sn = np.array([math.sin(t) for t in v.astype(np.float64).tolist()], np.float64).astype(np.float32)
    cs = np.array([math.cos(t) for t in v.astype(np.float64).tolist()], np.float64).astype(np.float32)
    s = np.sqrt(np.float32(-2.0) * lg)
    return sn * s, cs * s


class CudaGenerator:
    def __init__(self, seed, cap=0):
        self.seed = seed
        self.offset = 0
        self.cap = cap

    def randn(self, n):
        out = np.zeros(n, np.float32)
        if n == 0:
            return out
        grid = (n + 255) // 256
        if self.cap:
            grid = min(grid, self.cap)
        S = 256 * grid
        passes = (n - 1) // (4 * S) + 1
        k0, k1 = self.seed & MASK32, (self.seed >> 32) & MASK32
        for k in range(passes):
            t = np.arange(S, dtype=np.uint64)
            first = k * 4 * S
            t = t[first + t.astype(np.int64) < n]  # threads with nothing to store skip the work
            ctr_lo = self.offset // 4 + k  # + t * 2^64 in the high half of the 128-bit counter
            c = (np.full(t.shape, ctr_lo & MASK32, np.uint64), np.full(t.shape, ctr_lo >> 32, np.uint64),
                 t & np.uint64(MASK32), t >> np.uint64(32))
            w = philox(c, k0, k1)
            a, b = box_muller(w[0], w[1])
            cc, d = box_muller(w[2], w[3])
            for i, val in enumerate((a, b, cc, d)):
                li = first + t.astype(np.int64) + i * S
                ok = li < n
                out[li[ok]] = val[ok] + np.float32(0.0)
        self.offset += ((passes * 4 + 3) // 4) * 4
        return out


def a1111_randn(seed, offset, n):
    """AUTOMATIC1111 modules/rng_philox.py's Generator.randn, re-expressed:
    element i = Philox(counter (offset, 0, i, 0), key seed), Box-Muller in
    float64 (uint32 * float32 arrays promote to float64) cast to float32."""
    t = np.arange(n, dtype=np.uint64)
    c = (np.full(n, offset, np.uint64), np.zeros(n, np.uint64), t, np.zeros(n, np.uint64))
    w = philox(c, seed & MASK32, seed >> 32)
    inv = np.float64(np.float32(2.3283064e-10))
    inv2pi = np.float64(np.float32(2.3283064e-10 * 6.2831855))
    u = w[0].astype(np.float64) * inv + inv / 2
    v = w[1].astype(np.float64) * inv2pi + inv2pi / 2
    return (np.sqrt(-2.0 * np.log(u)) * np.sin(v)).astype(np.float32)


def fnv1a64(x):
    h = 0xCBF29CE484222325
    for wd in np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).tolist():
        h = ((h ^ wd) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


SEEDS = [0, 42, 2**32 + 7]
# (seed, grid cap, [numel per successive call])
CASES = [(s, 0, [16384, 16384]) for s in SEEDS] + [(s, 0, [49152, 49152]) for s in SEEDS] + [
    (42, 0, [7, 17, 1]),
    (42, 168, [49152, 49152]),  # an RTX 3060's 28 SMs * 6 blocks: rand.y used
    (2**32 + 7, 4, [16384, 16384]),  # 1024 threads: 4 passes, all of float4
    (0, 3, [5000, 777]),
]
HEAD = 64
FULL_MAX = 256


def write(out_dir):
    lines = ["# sdvk cuda-philox goldens from tools/philox_ref.py (numpy model of torch.randn on cuda)",
             "# case cuda <grid cap, 0 = uncapped> <seed>: a freshly seeded generator",
             f"# randn <n> <fnv1a64> <first> <count>: one call; values[first:first+count] are all "
             f"n values when n <= {FULL_MAX}, else the first {HEAD} and the last {HEAD}"]
    vals = []
    pos = 0
    for seed, cap, calls in CASES:
        g = CudaGenerator(seed, cap)
        lines.append(f"case cuda {cap} {seed}")
        for n in calls:
            x = g.randn(n)
            st = x if n <= FULL_MAX else np.concatenate([x[:HEAD], x[-HEAD:]])
            lines.append(f"randn {n} {fnv1a64(x):016x} {pos} {st.size}")
            vals.append(st)
            pos += st.size
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "cuda.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    np.save(os.path.join(out_dir, "cuda.npy"), np.concatenate(vals).astype(np.float32))
    print(f"wrote {len(CASES)} cases, {pos} stored values to {out_dir}/cuda.txt, cuda.npy")


def compare_a1111():
    for seed in SEEDS:
        g = CudaGenerator(seed)
        for call in range(2):
            ours = g.randn(16384)
            theirs = a1111_randn(seed, call, 16384)
            d = np.abs(ours.astype(np.float64) - theirs)
            ulp = np.abs(ours.view(np.int32).astype(np.int64) - theirs.view(np.int32).astype(np.int64))
            print(f"seed {seed} call {call + 1}: {np.mean(ours == theirs) * 100:.2f}% identical, "
                  f"max |diff| {d.max():.3g}, max {ulp.max()} ulp")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data", "rng"))
    ap.add_argument("--compare-a1111", action="store_true")
    a = ap.parse_args()
    if a.compare_a1111:
        compare_a1111()
    else:
        write(a.out)


if __name__ == "__main__":
    main()
