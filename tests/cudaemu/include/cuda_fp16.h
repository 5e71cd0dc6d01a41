/* SPDX-License-Identifier: BSD-3-Clause */
/* cuda_fp16.h for the CUDA emulator: see cudaemu_half.h. */
#include "cudaemu_half.h"
