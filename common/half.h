/* IEEE 754 binary16 ("f16") conversions. f16 values travel as raw uint16_t bits because C11
 * has no portable half type. Every conversion to f16 rounds once, to nearest with ties to
 * even; overflow gives +-inf, NaN stays NaN (payload kept where it fits). Conversions from
 * f16 are exact. */
#ifndef GQ_HALF_H
#define GQ_HALF_H

#include <stddef.h>
#include <stdint.h>

uint16_t gq_f16_from_f32(float x);
float gq_f16_to_f32(uint16_t h);

/* Direct from double: going through float first would round twice and can land one ulp
 * off on ties. */
uint16_t gq_f16_from_f64(double x);
double gq_f16_to_f64(uint16_t h);

/* Bulk versions; dst and src must not overlap. */
void gq_f16_from_f32_n(uint16_t *dst, const float *src, size_t n);
void gq_f16_to_f32_n(float *dst, const uint16_t *src, size_t n);

#endif
