#version 450
// Advances the graph's step counter at the end of each replay, so that
// consecutive replays of one recorded command buffer see step, step+1, ...
layout(local_size_x = 1) in;
layout(std430, binding = 5) buffer State { uint step; } state;
void main() { state.step += 1; }
