#version 450
// dsp.gain, dsp.window, dsp.frame, dsp.preemphasis (one-shot, no state), on f32 and f64
// signals seen as rows of len samples. Arithmetic in ACC: double like the CPU when the
// device has fp64 (one rounding to T), float otherwise; gain_f32f multiplies in float
// (exact for a gain that is itself a float: the double product of two floats is exact).
// variant: gain_f32 -DGAIN -DT=float -DACC=double
// variant: gain_f32f -DGAIN -DT=float -DACC=float
// variant: gain_f64 -DGAIN -DT=double -DACC=double
// variant: window_f32 -DWINDOW -DT=float -DACC=float
// variant: window_f64 -DWINDOW -DT=double -DACC=double
// variant: frame_f32 -DFRAME -DT=float -DACC=float
// variant: frame_f64 -DFRAME -DT=double -DACC=double
// variant: preemph_f32 -DPREEMPH -DT=float -DACC=double
// variant: preemph_f32_nofp64 -DPREEMPH -DT=float -DACC=float
// variant: preemph_f64 -DPREEMPH -DT=double -DACC=double
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer X { T x[]; };
#ifdef WINDOW
layout(std430, binding = 1) readonly buffer W { T w[]; };
layout(std430, binding = 2) writeonly buffer Y { T y[]; };
#else
layout(std430, binding = 1) writeonly buffer Y { T y[]; };
#endif

#if defined(GAIN)
layout(push_constant) uniform P { uint n, pad; ACC g; } p;
#elif defined(WINDOW)
layout(push_constant) uniform P { uint n, len; } p;
#elif defined(FRAME)
// n output rows (frames, or frame positions when frames_last)
layout(push_constant) uniform P { uint n, len, fl, nf, hop, last; } p;
#else
layout(push_constant) uniform P { uint n, len; ACC coef; } p;
#endif

void main()
{
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += GQ_STRIDE) {
#if defined(GAIN)
        precise ACC v = ACC(x[i]) * p.g;
        y[i] = T(v);
#elif defined(WINDOW)
        y[i] = x[i] * w[i % p.len];
#elif defined(FRAME)
        uint A = p.last != 0 ? p.fl : p.nf, r = i / A, a = i - r * A;
        uint xr = r * p.len;
        if (p.last != 0) {
            for (uint f = 0; f < p.nf; f++)
                y[i * p.nf + f] = x[xr + f * p.hop + a];
        } else {
            uint xs = xr + a * p.hop;
            for (uint k = 0; k < p.fl; k++)
                y[i * p.fl + k] = x[xs + k];
        }
#else
        // librosa's default state: zi = 2 x[0] - x[1] (x[0] alone in a row of one sample)
        uint r = i / p.len, t = i - r * p.len;
        ACC xv = ACC(x[i]);
        if (t != 0) {
            precise ACC v = xv - p.coef * ACC(x[i - 1]);
            y[i] = T(v);
        } else {
            ACC x1 = p.len > 1 ? ACC(x[i + 1]) : xv;
            precise ACC z = ACC(2) * xv - x1;
            precise ACC v = xv + z;
            y[i] = T(v);
        }
#endif
    }
}
