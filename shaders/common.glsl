// Shared by the shaders (included, not compiled on its own).
//
// Elementwise shaders take their work-group size as specialization constant 0 and loop
// over their items with a grid stride: the host caps the work-group count at the device's
// limit (maxComputeWorkGroupCount), and one dispatch still covers any tensor.
// Sizes and indices are 32-bit: the host declines tensors of 2^31 elements or more, and
// tensors larger than maxStorageBufferRange.
// `precise` where the CPU's rounding must be kept: it forbids contraction into fma and the
// drivers' algebraic rewrites (a compensated sum rewritten is no longer compensated).
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : enable
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : enable
#extension GL_EXT_shader_explicit_arithmetic_types_int8 : enable
#extension GL_EXT_shader_16bit_storage : enable
#extension GL_EXT_shader_8bit_storage : enable

#define GQ_STRIDE (gl_NumWorkGroups.x * gl_WorkGroupSize.x)
#define GQ_NAN_F uintBitsToFloat(0x7fc00000u)
#define GQ_NINF_F uintBitsToFloat(0xff800000u)
#define GQ_NAN_D packDouble2x32(uvec2(0u, 0x7ff80000u))
#define GQ_NINF_D packDouble2x32(uvec2(0u, 0xfff00000u))
