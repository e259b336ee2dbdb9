// Shared by the ONNX accelerator's shaders (onnx_*.comp; host: worker/vulkan/vk_onnx*.c),
// f32 only, with the CPU's formulas (worker/onnx): comparisons that keep NaN where the CPU
// keeps it, sigmoid split at 0 so that exp never overflows.

// y clamped to [0, 1], NaN kept (clamp() may drop it).
float gq_unit(float y)
{
    return y < 0.0 ? 0.0 : y > 1.0 ? 1.0 : y;
}

float gq_sigmoid(float x)
{
    return x >= 0.0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

// tanh from exp(-2|x|), which cannot overflow (drivers' tanh may compute inf / inf for
// large |x|); below 2^-8 the cubic term is under the tests' tolerance.
float gq_tanh(float x)
{
    float ax = abs(x);
    if (ax < 0.00390625)
        return x;
    float e = exp(-2.0 * ax), t = (1.0 - e) / (1.0 + e);
    return x < 0.0 ? -t : t;
}

// A fused epilogue (the host maps gq_onnx_act_t kinds to these codes): 0 none, 1 Relu,
// 2 LeakyRelu (a), 3 Clip (a, b), 4 Sigmoid, 5 Tanh, 6 HardSigmoid (a, b).
float gq_act(float v, int act, float a, float b)
{
    switch (act) {
    case 1:
        return v > 0.0 ? v : 0.0;
    case 2:
        return v >= 0.0 ? v : a * v;
    case 3:
        return v < a ? a : v > b ? b : v;
    case 4:
        return gq_sigmoid(v);
    case 5:
        return gq_tanh(v);
    case 6:
        return gq_unit(a * v + b);
    default:
        return v;
    }
}
