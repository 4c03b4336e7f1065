#!/usr/bin/env python3
"""Goldens for sdvk's SD_RNG_CPU generator (src/sample/noise.h) from torch itself.

    tools/.venv/bin/python tools/make_rng_goldens.py [--out tests/data/rng]

Runs torch.randn(shape, generator=torch.Generator().manual_seed(seed)) for
several seeds, shapes and call sequences (successive calls on one generator),
and writes
    cpu.txt   the manifest read by tests/test_noise.c
    cpu.npy   float32 values: all of a call's output when it has <= 256
              values, else its first 64 and last 64
The manifest holds, per call, the count n and an FNV-1a 64 hash over the n
float32 bit patterns (h ^= bits; h *= 0x100000001b3, per value), so big
outputs are checked in full without being stored.

Cases with variant "avx2" come from this process (an AVX2 or AVX-512 CPU:
ATen has no AVX-512 normal kernel, so both run the AVX2 one); "scalar" cases
come from a child run with ATEN_CPU_CAPABILITY=default (ATen's scalar kernel,
as on CPUs without AVX2 and on arm64; it calls libm's logf/sincosf, so those
goldens only hold on glibc).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

SEEDS = [0, 42, 2**32 + 7, 123456789]
SHAPES = [(1, 4, 64, 64), (2, 4, 96, 64), (4, 8, 8), (7,), (17,), (4, 1, 1, 5)]
# successive calls on one generator: the cached second normal of the n < 16
# path survives an n >= 16 call; boundary sizes around 16
SEQUENCES = [
    [(1, 4, 64, 64), (1, 4, 64, 64)],
    [(7,), (17,), (7,)],
    [(7,), (7,)],
]
SEQUENCES_42 = [
    [(3,), (1,), (1,), (2,)],
    [(15,), (16,), (31,), (33,), (1,)],
    [(2, 4, 96, 64), (17,), (4, 1, 1, 5), (1, 4, 64, 64)],
]
SCALAR_CASES = [
    (0, [(1, 4, 64, 64)]),
    (42, [(1, 4, 64, 64), (17,), (4, 8, 8)]),
    (2**32 + 7, [(7,), (33,), (2, 4, 96, 64)]),
]
HEAD = 64
FULL_MAX = 256


def fnv1a64(x):
    h = 0xCBF29CE484222325
    for w in np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).tolist():
        h = ((h ^ w) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def run_cases(cases):
    """cases: list of (seed, [shape...]) -> list of lists of float32 arrays"""
    out = []
    for seed, shapes in cases:
        g = torch.Generator().manual_seed(seed)
        out.append([torch.randn(s, generator=g, dtype=torch.float32).numpy().ravel().copy()
                    for s in shapes])
    return out


def all_avx2_cases():
    cases = []
    for seed in SEEDS:
        for s in SHAPES:
            cases.append((seed, [s]))
        for seq in SEQUENCES:
            cases.append((seed, seq))
    for seq in SEQUENCES_42:
        cases.append((42, seq))
    return cases


def check_facts():
    """What noise.h claims about torch, asserted on this torch."""
    # the default generator behaves as a fresh Generator
    torch.manual_seed(42)
    a = torch.randn(1, 4, 64, 64)
    b = torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(42))
    assert torch.equal(a, b), "torch.manual_seed + randn != Generator().manual_seed + randn"
    # only the low 32 bits of a CPU seed matter
    for s in [(17,), (7,)]:
        a = torch.randn(s, generator=torch.Generator().manual_seed(2**32 + 7))
        b = torch.randn(s, generator=torch.Generator().manual_seed(7))
        assert torch.equal(a, b), "seed 2^32+7 != seed 7 on the CPU"


def scalar_worker(path):
    cap = torch.backends.cpu.get_cpu_capability()
    if cap != "DEFAULT":
        sys.exit(f"scalar worker: capability is {cap}, want DEFAULT")
    res = run_cases(SCALAR_CASES)
    np.savez(path, *[x for r in res for x in r])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data", "rng"))
    ap.add_argument("--scalar-worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.scalar_worker:
        scalar_worker(a.scalar_worker)
        return
    cap = torch.backends.cpu.get_cpu_capability()
    if cap not in ("AVX2", "AVX512"):
        sys.exit(f"CPU capability {cap}: the avx2 goldens need an AVX2 or AVX-512 CPU")
    check_facts()

    blocks = []  # (kind, variant, seed, [arrays])
    for (seed, shapes), arrs in zip(all_avx2_cases(), run_cases(all_avx2_cases())):
        blocks.append(("cpu", "avx2", seed, arrs))
    with tempfile.TemporaryDirectory() as td:
        p = os.path.join(td, "scalar.npz")
        env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
        subprocess.run([sys.executable, __file__, "--scalar-worker", p], env=env, check=True)
        z = np.load(p)
        flat = [z[f"arr_{i}"] for i in range(len(z.files))]
    k = 0
    for seed, shapes in SCALAR_CASES:
        blocks.append(("cpu", "scalar", seed, flat[k:k + len(shapes)]))
        k += len(shapes)

    os.makedirs(a.out, exist_ok=True)
    lines = [f"# sdvk rng goldens from tools/make_rng_goldens.py: torch {torch.__version__}, "
             f"cpu capability {cap} (avx2 cases), DEFAULT (scalar cases)",
             "# case <kind> <variant> <seed>: a freshly seeded generator",
             f"# randn <n> <fnv1a64> <first> <count>: one call; values[first:first+count] are all "
             f"n values when n <= {FULL_MAX}, else the first {HEAD} and the last {HEAD}"]
    values = []
    pos = 0
    for kind, variant, seed, arrs in blocks:
        lines.append(f"case {kind} {variant} {seed}")
        for x in arrs:
            st = x if x.size <= FULL_MAX else np.concatenate([x[:HEAD], x[-HEAD:]])
            lines.append(f"randn {x.size} {fnv1a64(x):016x} {pos} {st.size}")
            values.append(st.astype(np.float32))
            pos += st.size
    with open(os.path.join(a.out, "cpu.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    np.save(os.path.join(a.out, "cpu.npy"), np.concatenate(values))
    print(f"wrote {len(blocks)} cases, {pos} stored values to {a.out}/cpu.txt, cpu.npy")


if __name__ == "__main__":
    main()
