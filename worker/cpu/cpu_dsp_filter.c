/* CPU kernels of the dsp.* filter and level ops (issue 4; filled in next). */
#include "cpu_ops.h"

const gq_cpu_kernel_family_t gq_cpu_dsp_filter_kernels = {NULL, 0};
