/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared by the CUDA emulator's executor.cpp and cudart.cpp. */
#ifndef TSR_CUDAEMU_EMU_INTERNAL_H
#define TSR_CUDAEMU_EMU_INTERNAL_H
#include "cuda_runtime.h"

/* Records e as the calling thread's last error (cudaGetLastError) and returns it. */
cudaError_t tsr_emu_fail(cudaError_t e);
#endif
