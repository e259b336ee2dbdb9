#version 450
// tensor.add, tensor.mul (OP), on equal shapes or through a broadcast plan (BCAST): the
// CPU's plan (dims of size 1 dropped, contiguous runs merged, stride 0 where an input is
// broadcast), right-aligned into 8 slots. i32 wraps (SPIR-V integer arithmetic is modular).
// variant: binary_f32 -DT=float
// variant: binary_f64 -DT=double
// variant: binary_i32 -DT=int
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int OP = 0; // 0 add, 1 mul
layout(constant_id = 2) const int BCAST = 0;

layout(std430, binding = 0) readonly buffer X { T x[]; };
layout(std430, binding = 1) readonly buffer Y { T y[]; };
layout(std430, binding = 2) writeonly buffer Z { T z[]; };
layout(push_constant) uniform P
{
    uint n, nd;
    uint sh[8], s0[8], s1[8];
} p;

T apply(T a, T b)
{
    return OP == 0 ? a + b : a * b;
}

void main()
{
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += GQ_STRIDE) {
        if (BCAST == 0) {
            z[i] = apply(x[i], y[i]);
            continue;
        }
        uint r = i, ox = 0, oy = 0;
        for (int k = 7; k >= 8 - int(p.nd); k--) {
            uint q = r / p.sh[k], d = r - q * p.sh[k];
            ox += d * p.s0[k];
            oy += d * p.s1[k];
            r = q;
        }
        z[i] = apply(x[ox], y[oy]);
    }
}
