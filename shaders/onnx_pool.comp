#version 450
// The ONNX accelerator's pools (vk_onnx_ops.c), f32, 1-D as 2-D with IH = KH = 1.
// onnx_pool: MaxPool (KIND 0) / AveragePool (KIND 1), one invocation per output element
// over its window's taps inside the input, in the CPU's order; the average's divisor is
// the whole window (count_include_pad: also where ceil_mode runs it past the pads, as
// onnxruntime counts it) or the taps inside the input, as on the CPU. onnx_gpool: GlobalMaxPool / GlobalAveragePool, one
// invocation per plane.
// variant: onnx_pool -DGLOBAL=0
// variant: onnx_gpool -DGLOBAL=1
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int KIND = 0;

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };

#if GLOBAL
layout(push_constant) uniform P
{
    uint sz, n;
} p;

void main()
{
    for (uint pl = gl_GlobalInvocationID.x; pl < p.n; pl += GQ_STRIDE) {
        uint base = pl * p.sz;
        float acc = KIND == 0 ? GQ_NINF_F : 0.0;
        for (uint i = 0; i < p.sz; i++) {
            float v = x[base + i];
            acc = KIND == 0 ? (v > acc ? v : acc) : acc + v;
        }
        y[pl] = KIND == 0 ? acc : acc / float(p.sz);
    }
}
#else
layout(push_constant) uniform P
{
    int inc, IH, IW, OH, OW, KH, KW, SH, SW, DH, DW, PH, PW, PHe, PWe;
    uint n;
} p;

void main()
{
    for (uint gi = gl_GlobalInvocationID.x; gi < p.n; gi += GQ_STRIDE) {
        int i = int(gi);
        int ow = i % p.OW, t = i / p.OW, oh = t % p.OH, pl = t / p.OH;
        int xp = pl * p.IH * p.IW;
        int sh = oh * p.SH - p.PH, sw = ow * p.SW - p.PW, ch = 0, cw = 0;
        for (int kw = 0; kw < p.KW; kw++) {
            int iw = sw + kw * p.DW;
            cw += iw >= 0 && iw < p.IW ? 1 : 0;
        }
        float m = GQ_NINF_F, acc = 0.0;
        for (int kh = 0; kh < p.KH; kh++) {
            int ih = sh + kh * p.DH;
            if (ih < 0 || ih >= p.IH)
                continue;
            ch++;
            for (int kw = 0; kw < p.KW; kw++) {
                int iw = sw + kw * p.DW;
                if (iw < 0 || iw >= p.IW)
                    continue;
                float v = x[xp + ih * p.IW + iw];
                m = v > m ? v : m;
                acc += v;
            }
        }
        int cnt = ch * cw;
        y[gi] = KIND == 0 ? m : acc / float(p.inc != 0 ? p.KH * p.KW : cnt != 0 ? cnt : 1);
    }
}
#endif
