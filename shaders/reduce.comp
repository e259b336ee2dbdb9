#version 450
// tensor.sum, tensor.mean, tensor.max along one axis of an input seen as [outer, n, inner].
// ROWS == 0: an invocation per output, walking the axis; ROWS == 1 (inner == 1, long
// rows): a work-group per row, strided partial results merged by a tree in shared memory.
// Accumulators are the CPU's: f32 sums in double (Neumaier's compensated sum in float
// without fp64), f64 sums compensated (Neumaier), integer sums in 64 bits wrapping,
// integer means in double; max lets NaN win like numpy.max.
// variant: sum_f32 -DTIN=float -DTOUT=float -DDSUM
// variant: sum_f32_nofp64 -DTIN=float -DTOUT=float -DNEU=float
// variant: sum_f64 -DTIN=double -DTOUT=double -DNEU=double
// variant: sum_i32 -DTIN=int -DTOUT=int64_t -DISUM
// variant: sum_i16 -DTIN=int16_t -DTOUT=int64_t -DISUM
// variant: sum_u8 -DTIN=uint8_t -DTOUT=int64_t -DISUM
// variant: mean_f32 -DTIN=float -DTOUT=float -DDSUM -DMEAN
// variant: mean_f32_nofp64 -DTIN=float -DTOUT=float -DNEU=float -DMEAN
// variant: mean_f64 -DTIN=double -DTOUT=double -DNEU=double -DMEAN
// variant: mean_i32 -DTIN=int -DTOUT=double -DDSUM -DMEAN
// variant: mean_i16 -DTIN=int16_t -DTOUT=double -DDSUM -DMEAN
// variant: mean_u8 -DTIN=uint8_t -DTOUT=double -DDSUM -DMEAN
// variant: max_f32 -DTIN=float -DTOUT=float -DFMAX -DNINF=GQ_NINF_F
// variant: max_f64 -DTIN=double -DTOUT=double -DFMAX -DNINF=GQ_NINF_D
// variant: max_i32 -DTIN=int -DTOUT=int -DIMAX -DLO=(-2147483647-1)
// variant: max_i16 -DTIN=int16_t -DTOUT=int16_t -DIMAX -DLO=(-32768)
// variant: max_u8 -DTIN=uint8_t -DTOUT=uint8_t -DIMAX -DLO=0
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int ROWS = 0;

layout(std430, binding = 0) readonly buffer X { TIN x[]; };
layout(std430, binding = 1) writeonly buffer Y { TOUT y[]; };
layout(push_constant) uniform P
{
    uint outer, n, inner;
} p;

#if defined(DSUM)
#define ACC double
void acc_init(out ACC a) { a = 0.0LF; }
void acc_add(inout ACC a, TIN v) { precise double s = a + double(v); a = s; }
void acc_merge(inout ACC a, ACC b) { precise double s = a + b; a = s; }
double acc_val(ACC a) { return a; }
#elif defined(NEU)
struct ACC {
    NEU s, c;
};
void acc_init(out ACC a) { a.s = NEU(0); a.c = NEU(0); }
void acc_add(inout ACC a, NEU v)
{
    precise NEU t = a.s + v;
    precise NEU d = abs(a.s) >= abs(v) ? (a.s - t) + v : (v - t) + a.s;
    precise NEU c = a.c + d;
    a.s = t;
    a.c = c;
}
void acc_merge(inout ACC a, ACC b)
{
    acc_add(a, b.s);
    precise NEU c = a.c + b.c;
    a.c = c;
}
// Infinities make the compensation NaN (inf - inf): the plain sum is then the answer.
NEU acc_val(ACC a)
{
    precise NEU v = a.s + a.c;
    return isinf(a.s) || isnan(a.s) ? a.s : v;
}
#elif defined(ISUM)
#define ACC uint64_t
void acc_init(out ACC a) { a = 0ul; }
void acc_add(inout ACC a, TIN v) { a += uint64_t(int64_t(int(v))); }
void acc_merge(inout ACC a, ACC b) { a += b; }
#elif defined(FMAX)
#define ACC TIN
void acc_init(out ACC a) { a = NINF; }
void acc_add(inout ACC a, TIN v) { a = (v > a || isnan(v)) ? v : a; }
void acc_merge(inout ACC a, ACC b) { acc_add(a, b); }
#elif defined(IMAX)
#define ACC int
void acc_init(out ACC a) { a = LO; }
void acc_add(inout ACC a, TIN v) { a = max(a, int(v)); }
void acc_merge(inout ACC a, ACC b) { a = max(a, b); }
#endif

TOUT acc_fin(ACC a, uint n)
{
#if defined(MEAN) && defined(NEU)
    precise NEU m = acc_val(a) / NEU(n);
    return n > 0 ? TOUT(m) : TOUT(NEU(0) / NEU(0));
#elif defined(MEAN)
    precise double m = a / double(n);
    return n > 0 ? TOUT(m) : TOUT(GQ_NAN_D);
#elif defined(DSUM) || defined(NEU)
    return TOUT(acc_val(a));
#elif defined(ISUM)
    return int64_t(a);
#else
    return TOUT(a);
#endif
}

shared ACC part[gl_WorkGroupSize.x];

void main()
{
    if (ROWS == 0) {
        uint total = p.outer * p.inner;
        for (uint g = gl_GlobalInvocationID.x; g < total; g += GQ_STRIDE) {
            uint o = g / p.inner, j = g - o * p.inner;
            uint base = o * p.n * p.inner + j;
            ACC a;
            acc_init(a);
            for (uint k = 0; k < p.n; k++)
                acc_add(a, x[base + k * p.inner]);
            y[g] = acc_fin(a, p.n);
        }
        return;
    }
    uint l = gl_LocalInvocationID.x, L = gl_WorkGroupSize.x;
    for (uint o = gl_WorkGroupID.x; o < p.outer; o += gl_NumWorkGroups.x) {
        ACC a;
        acc_init(a);
        for (uint k = l; k < p.n; k += L)
            acc_add(a, x[o * p.n + k]);
        part[l] = a;
        barrier();
        for (uint s = L / 2; s > 0; s >>= 1) {
            if (l < s) {
                ACC c = part[l];
                acc_merge(c, part[l + s]);
                part[l] = c;
            }
            barrier();
        }
        if (l == 0)
            y[o] = acc_fin(part[0], p.n);
        barrier();
    }
}
