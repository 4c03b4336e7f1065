#version 450
// EMBEDDING (table gather by int32 id; a table larger than one binding's
// maxStorageBufferRange is bound as two ranges: rows < split from binding 2,
// the rest from binding 4) and TIMESTEP_EMBED
// ([cos(t f_k), sin(t f_k)] with f_k precomputed on the host in fp32 so
// the frequencies match the CPU reference bit for bit).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;
layout(constant_id = 0) const uint OP = 0; // 0 embedding, 1 timestep

TENSOR(0, outp)
layout(std430, binding = 1) buffer Ids { int ids[]; };
TENSOR(2, table)
layout(std430, binding = 3) buffer Freq { float freq[]; };
TENSOR(4, tin) // timestep: t; embedding: the table's rows >= split

layout(push_constant) uniform P {
    uint n, C, V;
    uint oo, oids, otab, ofreq, ot, split;
    uint wide; // bit 0: output fp32, bit 4: t fp32 (f16 mode; see eltwise.comp)
} p;
#if F16
layout(std430, binding = 0) buffer O32 { float outp32[]; };
layout(std430, binding = 4) buffer T32 { float tin32[]; };
#define LD_T(idx) ((p.wide & 16u) != 0 ? tin32[idx] : float(tin[idx]))
#else
#define LD_T(idx) float(tin[idx])
#endif

void main() {
    uint stride = gl_NumWorkGroups.x * 256;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) {
        uint r = i / p.C, c = i % p.C;
        float v;
        if (OP == 0) {
            int id = clamp(ids[p.oids + r], 0, int(p.V) - 1);
            uint row = uint(id);
            v = row < p.split ? LD(table[p.otab + row * p.C + c])
                              : LD_T(p.ot + (row - p.split) * p.C + c);
        } else {
            uint half_ = p.C / 2, k = c % half_;
            precise float arg = LD_T(p.ot + r) * freq[p.ofreq + k];
            // Cody-Waite reduction to [-pi, pi]: GPU sin/cos are only
            // accurate on a bounded range.
            precise float nq = round(arg * 0.15915494309189535);
            precise float red = (arg - nq * 6.28125) - nq * 0.0019353071795864769;
            v = c < half_ ? cos(red) : sin(red);
        }
#if F16
        if ((p.wide & 1u) != 0) {
            outp32[p.oo + i] = v;
            continue;
        }
#endif
        outp[p.oo + i] = ST(v);
    }
}
