#version 450
// The ONNX accelerator's convolutions (vk_onnx_ops.c), 1-D as 2-D with IH = KH = 1.
// onnx_im2col: col[b][k][p] for the images and groups b of a chunk, k = (cg, kh, kw) over
// the group's Cg channels and the window, p = (oh, ow); 0 in the padding (the GEMM then
// multiplies the weights by it). onnx_conv_direct: one invocation per output element
// summing its window, bias and epilogue included (depthwise convs, where a GEMM would
// have one row).
// variant: onnx_im2col -DIM2COL=1
// variant: onnx_conv_direct -DIM2COL=0
#include "common.glsl"
#include "onnx_common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform P
{
    int C, M, Cg, Mg, KH, KW, IH, IW, OH, OW, SH, SW, DH, DW, PH, PW;
    int K, P, has_bias, act;
    uint xoff, n;
    float acta, actb;
} p;

#if IM2COL
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Col { float col[]; };

void main()
{
    for (uint gi = gl_GlobalInvocationID.x; gi < p.n; gi += GQ_STRIDE) {
        int i = int(gi);
        int pp = i % p.P, t = i / p.P, kk = t % p.K, b = t / p.K;
        int kw = kk % p.KW, t2 = kk / p.KW, kh = t2 % p.KH, cg = t2 / p.KH;
        int oh = pp / p.OW, ow = pp - oh * p.OW;
        int ih = oh * p.SH - p.PH + kh * p.DH, iw = ow * p.SW - p.PW + kw * p.DW;
        float v = 0.0;
        if (ih >= 0 && ih < p.IH && iw >= 0 && iw < p.IW)
            v = x[p.xoff + uint(((b * p.Cg + cg) * p.IH + ih) * p.IW + iw)];
        col[gi] = v;
    }
}
#else
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

void main()
{
    for (uint gi = gl_GlobalInvocationID.x; gi < p.n; gi += GQ_STRIDE) {
        int i = int(gi);
        int ow = i % p.OW, t = i / p.OW, oh = t % p.OH, t2 = t / p.OH, m = t2 % p.M;
        int img = t2 / p.M, g = m / p.Mg;
        int xg = (img * p.C + g * p.Cg) * p.IH * p.IW, wm = m * p.Cg * p.KH * p.KW;
        float acc = 0.0;
        for (int c = 0; c < p.Cg; c++)
            for (int kh = 0; kh < p.KH; kh++) {
                int ih = oh * p.SH - p.PH + kh * p.DH;
                if (ih < 0 || ih >= p.IH)
                    continue;
                for (int kw = 0; kw < p.KW; kw++) {
                    int iw = ow * p.SW - p.PW + kw * p.DW;
                    if (iw >= 0 && iw < p.IW)
                        acc += x[xg + (c * p.IH + ih) * p.IW + iw] *
                               w[wm + (c * p.KH + kh) * p.KW + kw];
                }
            }
        if (p.has_bias != 0)
            acc += bias[m];
        y[gi] = gq_act(acc, p.act, p.acta, p.actb);
    }
}
#endif
