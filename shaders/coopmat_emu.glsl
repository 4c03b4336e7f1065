// The COOPMAT_EMU test double of the cooperative-matrix operations (see
// coopmat.glsl); included after the kernel declares `shared uvec4 sh[]`.
#if COOPMAT_EMU
struct EmuAB { uint off, st, col; }; // col: column-major
const uint EMU_MAX = 32; // FM * FN / subgroup size at most (256 / 8)
struct EmuC { float v[EMU_MAX]; };
float sh_half(uint h) { return unpackHalf2x16(sh[h >> 3][(h >> 1) & 3u])[h & 1u]; }
EmuC emu_zero() {
    EmuC c;
    [[unroll]] for (uint t = 0; t < EMU_MAX; t++) c.v[t] = 0.0;
    return c;
}
// c += a (FM x FK) . b (FK x FN), each row- or column-major as loaded. lavapipe stops an
// invocation after 65535 loop iterations in all, so 4 elements and all of
// k per iteration; and no more unrolling than that (compile size).
EmuC emu_mad(EmuAB a, EmuAB b, EmuC c) {
    [[dont_unroll]] for (uint t = 0; t < EMU_MAX; t += 4) {
        if (gl_SubgroupInvocationID + gl_SubgroupSize * t >= FM * FN) break;
        [[unroll]] for (uint u = 0; u < 4; u++) {
            uint e = gl_SubgroupInvocationID + gl_SubgroupSize * (t + u);
            if (e >= FM * FN) continue;
            uint r = e / FN, col = e % FN;
            float s = 0.0;
            [[unroll]] for (uint k = 0; k < FK; k++) {
                uint ia = a.col != 0 ? k * a.st * 8 + r : r * a.st * 8 + k;
                uint ib = b.col != 0 ? col * b.st * 8 + k : k * b.st * 8 + col;
                s += sh_half(a.off * 8 + ia) * sh_half(b.off * 8 + ib);
            }
            c.v[t + u] += s;
        }
    }
    return c;
}
// row-major fp32 store into the uvec4 array (offset, stride in uvec4)
void emu_store(EmuC c, uint off, uint st) {
    for (uint t = 0; t < EMU_MAX; t++) {
        uint e = gl_SubgroupInvocationID + gl_SubgroupSize * t;
        if (e >= FM * FN) break;
        uint f = off * 4 + (e / FN) * st * 4 + e % FN;
        sh[f >> 2][f & 3u] = floatBitsToUint(c.v[t]);
    }
}
#endif
