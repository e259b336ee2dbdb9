#version 450
// tensor.scale (SCALE): x * factor + offset in ACC (double, like the CPU, when the device
// has fp64: one rounding to T; float otherwise), and tensor.clamp: min(max(x, lo), hi) in
// T, a NaN passing through (comparisons with NaN are false).
// variant: scale_f32 -DT=float -DACC=double -DSCALE
// variant: scale_f32_nofp64 -DT=float -DACC=float -DSCALE
// variant: scale_f64 -DT=double -DACC=double -DSCALE
// variant: clamp_f32 -DT=float -DACC=float
// variant: clamp_f64 -DT=double -DACC=double
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer X { T x[]; };
layout(std430, binding = 1) writeonly buffer Y { T y[]; };
layout(push_constant) uniform P
{
    uint n, pad;
    ACC a, b; // factor, offset; or lo, hi
} p;

void main()
{
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += GQ_STRIDE) {
#ifdef SCALE
        precise ACC v = ACC(x[i]) * p.a + p.b;
        y[i] = T(v);
#else
        T v = x[i];
        y[i] = v < p.a ? p.a : v > p.b ? p.b : v;
#endif
    }
}
