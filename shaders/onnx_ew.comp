#version 450
// The ONNX accelerator's elementwise shaders (vk_onnx_ops.c), f32, the CPU's formulas.
// onnx_unary: activations and unary math, OP a specialization constant (p0, p1: the op's
// attributes). onnx_binary: Add, Sub, Mul, Div (OP) on equal shapes, or through the
// host's broadcast plan (BCAST: dims of size 1 dropped, contiguous runs merged, stride 0
// where an input is broadcast, right-aligned into 8 slots). onnx_strided: Transpose, the
// plan's one source. onnx_batchnorm: inference, y = a x + b per channel with
// a = scale / sqrt(var + eps) and b = bias - a mean, as on the CPU.
// variant: onnx_unary -DKIND=0
// variant: onnx_binary -DKIND=1
// variant: onnx_strided -DKIND=2
// variant: onnx_batchnorm -DKIND=3
#include "common.glsl"
#include "onnx_common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int OP = 0;
layout(constant_id = 2) const int BCAST = 0;

#if KIND == 0
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P
{
    uint n;
    float p0, p1;
} p;

// Codes: vk_onnx.h's GQ_VKX_UN_*.
float un(float v)
{
    switch (OP) {
    case 0:
        return v > 0.0 ? v : 0.0;
    case 1:
        return gq_sigmoid(v);
    case 2:
        return gq_tanh(v);
    case 3:
        return v >= 0.0 ? v : p.p0 * v;
    case 4:
        return v >= 0.0 ? v : p.p0 * (exp(v) - 1.0);
    case 5:
        return p.p1 * (v > 0.0 ? v : p.p0 * (exp(v) - 1.0));
    case 6:
        return gq_unit(p.p0 * v + p.p1);
    case 7:
        return v * gq_unit(v / 6.0 + 0.5);
    case 8:
        return v > 30.0 ? v : log(1.0 + exp(v));
    case 9:
        return v / (1.0 + abs(v));
    case 10:
        return isnan(v) ? v : v < p.p0 ? p.p0 : v > p.p1 ? p.p1 : v;
    case 11:
        return exp(v);
    case 12:
        return log(v);
    case 13:
        return sqrt(v);
    case 14:
        return abs(v);
    case 15:
        return -v;
    case 16:
        return 1.0 / v;
    case 17:
        return floor(v);
    default:
        return ceil(v);
    }
}

void main()
{
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += GQ_STRIDE)
        y[i] = un(x[i]);
}
#elif KIND == 1
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Y { float y[]; };
layout(std430, binding = 2) writeonly buffer Z { float z[]; };
layout(push_constant) uniform P
{
    uint n, nd;
    uint sh[8], s0[8], s1[8];
} p;

float apply(float a, float b)
{
    return OP == 0 ? a + b : OP == 1 ? a - b : OP == 2 ? a * b : a / b;
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
#elif KIND == 2
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P
{
    uint n, nd;
    uint sh[8], s0[8];
} p;

void main()
{
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += GQ_STRIDE) {
        uint r = i, ox = 0;
        for (int k = 7; k >= 8 - int(p.nd); k--) {
            uint q = r / p.sh[k], d = r - q * p.sh[k];
            ox += d * p.s0[k];
            r = q;
        }
        y[i] = x[ox];
    }
}
#else
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(std430, binding = 2) readonly buffer Sc { float sc[]; };
layout(std430, binding = 3) readonly buffer Bi { float bi[]; };
layout(std430, binding = 4) readonly buffer Mu { float mu[]; };
layout(std430, binding = 5) readonly buffer Var { float var[]; };
layout(push_constant) uniform P
{
    uint n, sz, C;
    float eps;
} p;

void main()
{
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += GQ_STRIDE) {
        uint c = (i / p.sz) % p.C;
        float a = sc[c] / sqrt(var[c] + p.eps);
        y[i] = a * x[i] + (bi[c] - a * mu[c]);
    }
}
#endif
