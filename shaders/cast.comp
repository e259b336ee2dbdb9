#version 450
// tensor.cast between f32, f64, i32, i16, u8 (f16 runs on the CPU). Float -> int truncates
// toward zero and saturates, NaN -> 0 (the comparisons come first, so the conversion never
// leaves the target's range); int -> int saturates; -> float rounds to nearest even;
// widening is exact. Same-dtype casts are buffer copies (no shader).
// variant: cast_f32_f64 -DTS=float -DTD=double
// variant: cast_f32_i32 -DTS=float -DTD=int -DF2I -DLO=(-2147483647-1) -DHI=2147483647
// variant: cast_f32_i16 -DTS=float -DTD=int16_t -DF2I -DLO=(-32768) -DHI=32767
// variant: cast_f32_u8 -DTS=float -DTD=uint8_t -DF2I -DLO=0 -DHI=255
// variant: cast_f64_f32 -DTS=double -DTD=float
// variant: cast_f64_i32 -DTS=double -DTD=int -DF2I -DLO=(-2147483647-1) -DHI=2147483647
// variant: cast_f64_i16 -DTS=double -DTD=int16_t -DF2I -DLO=(-32768) -DHI=32767
// variant: cast_f64_u8 -DTS=double -DTD=uint8_t -DF2I -DLO=0 -DHI=255
// variant: cast_i32_f32 -DTS=int -DTD=float
// variant: cast_i32_f64 -DTS=int -DTD=double
// variant: cast_i32_i16 -DTS=int -DTD=int16_t -DI2I -DLO=(-32768) -DHI=32767
// variant: cast_i32_u8 -DTS=int -DTD=uint8_t -DI2I -DLO=0 -DHI=255
// variant: cast_i16_f32 -DTS=int16_t -DTD=float
// variant: cast_i16_f64 -DTS=int16_t -DTD=double
// variant: cast_i16_i32 -DTS=int16_t -DTD=int
// variant: cast_i16_u8 -DTS=int16_t -DTD=uint8_t -DI2I -DLO=0 -DHI=255
// variant: cast_u8_f32 -DTS=uint8_t -DTD=float
// variant: cast_u8_f64 -DTS=uint8_t -DTD=double
// variant: cast_u8_i32 -DTS=uint8_t -DTD=int
// variant: cast_u8_i16 -DTS=uint8_t -DTD=int16_t
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer X { TS x[]; };
layout(std430, binding = 1) writeonly buffer Y { TD y[]; };
layout(push_constant) uniform P
{
    uint n;
} p;

void main()
{
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += GQ_STRIDE) {
        TS v = x[i];
#if defined(F2I)
        // TS(HI) may round up (float(2147483647) = 2^31): v >= it is then past the range.
        int r = isnan(v) ? 0 : v <= TS(LO) ? LO : v >= TS(HI) ? HI : int(v);
        y[i] = TD(r);
#elif defined(I2I)
        y[i] = TD(clamp(int(v), LO, HI));
#else
        y[i] = TD(v);
#endif
    }
}
