/* dsp.* filter and level ops: fir, sos, resample, loudness ... (issue 4; filled in next). */
#include "optable.h"

const gq_op_family_t gq_ops_dsp_filter = {NULL, 0};
