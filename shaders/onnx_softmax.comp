#version 450
// The ONNX accelerator's Softmax / LogSoftmax (LOGF) along rows of len elements inner
// apart (vk_onnx_ops.c), one invocation per row: the maximum, then the sum of exp(x - max)
// and the outputs, as on the CPU.
// variant: onnx_softmax
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int LOGF = 0;

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P
{
    uint len, inner, rows;
} p;

void main()
{
    for (uint r = gl_GlobalInvocationID.x; r < p.rows; r += GQ_STRIDE) {
        uint o = r / p.inner, q = r - o * p.inner, base = o * p.len * p.inner + q;
        float mx = GQ_NINF_F;
        for (uint j = 0; j < p.len; j++) {
            float v = x[base + j * p.inner];
            mx = v > mx ? v : mx;
        }
        float sum = 0.0;
        for (uint j = 0; j < p.len; j++)
            sum += exp(x[base + j * p.inner] - mx);
        float ls = log(sum);
        for (uint j = 0; j < p.len; j++) {
            float v = x[base + j * p.inner] - mx;
            y[base + j * p.inner] = LOGF != 0 ? v - ls : exp(v) / sum;
        }
    }
}
