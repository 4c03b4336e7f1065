#version 450
// Ends each replay of a recorded graph: advances the step counter, so that
// consecutive replays of one command buffer see step, step+1, ..., and when
// the host has raised `cancel` zeroes the indirect dispatch table, so the
// replays still queued do no work (cancellation between steps).
layout(local_size_x = 64) in;
layout(std430, binding = 5) coherent buffer State { uint step; uint cancel; } state;
layout(std430, binding = 0) buffer Ind { uint ind[]; };
layout(push_constant) uniform P { uint words; } p;
shared uint cancel; // one read for the whole group: the host may write it any time
void main() {
    if (gl_LocalInvocationID.x == 0u) {
        cancel = state.cancel;
        if (cancel == 0u)
            state.step += 1u;
    }
    barrier();
    if (cancel != 0u)
        for (uint i = gl_LocalInvocationID.x; i < p.words; i += 64u) ind[i] = 0u;
}
