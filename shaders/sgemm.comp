#version 450
// C = alpha op(A) op(B) + beta C, f32, row-major (gq_vk_sgemm). A work-group of 16 x 16
// invocations computes a 64 x 64 tile of C, 4 x 4 outputs each (rows ty + 16 i, columns
// tx + 16 j), stepping through K in slices of 16 staged in shared memory. TA, TB: the
// matrices are stored transposed (the loads then walk the other index first, so
// neighbouring invocations still read neighbouring addresses). Out-of-range elements of a
// tile are zeros; beta == 0 never reads C (BLAS: NaN in C does not propagate).
// variant: sgemm
#include "common.glsl"

layout(local_size_x = 16, local_size_y = 16) in;
layout(constant_id = 1) const int TA = 0;
layout(constant_id = 2) const int TB = 0;

layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) buffer C { float c[]; };
layout(push_constant) uniform P
{
    uint m, n, k, lda, ldb, ldc, aoff, boff, coff;
    float alpha, beta;
} p;

#define TM 64
#define TN 64
#define TK 16

shared float As[TK][TM];
shared float Bs[TK][TN];

void main()
{
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint t = ty * 16 + tx;
    uint m0 = gl_WorkGroupID.y * TM, n0 = gl_WorkGroupID.x * TN;
    float acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            acc[i][j] = 0.0;
    for (uint k0 = 0; k0 < p.k; k0 += TK) {
        for (uint l = 0; l < 4; l++) {
            uint idx = t + 256 * l, r, kk;
            // A tile: TM rows x TK columns of op(A).
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
                v = TA == 0 ? a[p.aoff + gr * p.lda + gk] : a[p.aoff + gk * p.lda + gr];
            As[kk][r] = v;
            // B tile: TK rows x TN columns of op(B).
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
                v = TB == 0 ? b[p.boff + gk * p.ldb + gc] : b[p.boff + gc * p.ldb + gk];
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
        if (r >= p.m)
            continue;
        for (int j = 0; j < 4; j++) {
            uint col = n0 + tx + 16 * j;
            if (col >= p.n)
                continue;
            uint o = p.coff + r * p.ldc + col;
            float v = p.alpha * acc[i][j];
            c[o] = p.beta == 0.0 ? v : v + p.beta * c[o];
        }
    }
}
