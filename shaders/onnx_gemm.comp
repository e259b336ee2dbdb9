#version 450
// The ONNX accelerator's GEMM (vk_onnx_ops.c): for batch b, C[b] = act(alpha A[b] B[b] +
// beta bias[b]), under MatMul, Gemm, the convs' im2col GEMMs and the fused steps. Tiles as
// sgemm.comp (64 x 64 per work-group of 16 x 16, 4 x 4 outputs each, K in slices of 16
// staged in shared memory). A and B are read through strides (any transposition):
// A(r, k) = a[(b % amod) abs + r ars + k acs], B(k, c) = b[(b % bmod) bbs + k brs + c bcs];
// mod 1 shares one matrix between batches (conv weights, broadcast batch dims). The bias is
// bias[(b % biasmod) biasbs + r bsm + c bsn] (0 strides broadcast). Work-group y covers
// mtiles row tiles of each batch from b0 on. TA / TB pick the load order that keeps
// neighbouring invocations on neighbouring addresses.
// variant: onnx_gemm
#include "common.glsl"
#include "onnx_common.glsl"

layout(local_size_x = 16, local_size_y = 16) in;
layout(constant_id = 1) const int TA = 0; // A is contiguous along its rows (ars == 1)
layout(constant_id = 2) const int TB = 0; // B is contiguous along k (brs == 1)

layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer C { float c[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };
layout(push_constant) uniform P
{
    uint m, n, k, ars, acs, brs, bcs, ldc;
    uint amod, abs_, bmod, bbs, cbs, coff;
    uint bsm, bsn, biasmod, biasbs, mtiles, b0;
    int has_bias, act;
    float alpha, beta, acta, actb;
} p;

// The store: bias, epilogue.
void put(uint bt, uint r, uint col, float acc)
{
    float v = p.alpha * acc;
    if (p.has_bias != 0)
        v += p.beta * bias[(bt % p.biasmod) * p.biasbs + r * p.bsm + col * p.bsn];
    c[p.coff + bt * p.cbs + r * p.ldc + col] = gq_act(v, p.act, p.acta, p.actb);
}

#define TM 64
#define TN 64
#define TK 16

shared float As[TK][TM];
shared float Bs[TK][TN];

void main()
{
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint t = ty * 16 + tx;
    uint bt = p.b0 + gl_WorkGroupID.y / p.mtiles;
    uint m0 = (gl_WorkGroupID.y % p.mtiles) * TM, n0 = gl_WorkGroupID.x * TN;
    uint ab = (bt % p.amod) * p.abs_, bb = (bt % p.bmod) * p.bbs;
    float acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            acc[i][j] = 0.0;
    for (uint k0 = 0; k0 < p.k; k0 += TK) {
        for (uint l = 0; l < 4; l++) {
            uint idx = t + 256 * l, r, kk;
            if (TA == 0) {
                r = idx / TK;
                kk = idx % TK;
            } else {
                r = idx % TM;
                kk = idx / TM;
            }
            uint gr = m0 + r, gk = k0 + kk;
            float v = 0.0;
            if (gr < p.m && gk < p.k)
                v = a[ab + gr * p.ars + gk * p.acs];
            As[kk][r] = v;
            uint col;
            if (TB == 0) {
                col = idx % TN;
                kk = idx / TN;
            } else {
                col = idx / TK;
                kk = idx % TK;
            }
            uint gc = n0 + col;
            gk = k0 + kk;
            v = 0.0;
            if (gc < p.n && gk < p.k)
                v = b[bb + gk * p.brs + gc * p.bcs];
            Bs[kk][col] = v;
        }
        barrier();
        for (uint kk = 0; kk < TK; kk++) {
            float ar[4], br[4];
            for (int i = 0; i < 4; i++)
                ar[i] = As[kk][ty + 16 * i];
            for (int j = 0; j < 4; j++)
                br[j] = Bs[kk][tx + 16 * j];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    acc[i][j] += ar[i] * br[j];
        }
        barrier();
    }
    for (int i = 0; i < 4; i++) {
        uint r = m0 + ty + 16 * i;
        for (int j = 0; j < 4 && r < p.m; j++) {
            uint col = n0 + tx + 16 * j;
            if (col < p.n)
                put(bt, r, col, acc[i][j]);
        }
    }
}
