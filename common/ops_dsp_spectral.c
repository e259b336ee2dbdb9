/* dsp.* spectral ops: fft, window, stft, mel, mfcc ... (issue 4; filled in next). */
#include "optable.h"

const gq_op_family_t gq_ops_dsp_spectral = {NULL, 0};
