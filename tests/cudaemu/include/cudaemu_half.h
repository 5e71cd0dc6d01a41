/* SPDX-License-Identifier: BSD-3-Clause */
/* bf16 and IEEE fp16 for the CUDA emulator (tests/cudaemu): the storage
 * types of cuda_bf16.h and cuda_fp16.h and their conversions, rounding to
 * nearest even as the device's __float2bfloat16 and __float2half do. C
 * and C++, so the emulated cuBLAS and NCCL use the same conversions. */
#ifndef TSR_CUDAEMU_HALF_H
#define TSR_CUDAEMU_HALF_H
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uint16_t x;
} __nv_bfloat16;
typedef struct {
    uint16_t x;
} __half;

static inline uint32_t tsr_emu_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float tsr_emu_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline __nv_bfloat16 __float2bfloat16(float f)
{
    uint32_t u = tsr_emu_bits(f);
    __nv_bfloat16 h;
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN stays a (quiet) NaN */
        h.x = (uint16_t)((u >> 16) | 0x40u);
    else
        h.x = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    return h;
}

static inline float __bfloat162float(__nv_bfloat16 h) { return tsr_emu_float((uint32_t)h.x << 16); }

static inline __half __float2half(float f)
{
    uint32_t u = tsr_emu_bits(f), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    __half h;
    if (a > 0x7f800000u)
        h.x = (uint16_t)(sign | 0x7e00u);
    else if (a >= 0x477ff000u) /* 65520 and beyond round to Inf */
        h.x = (uint16_t)(sign | 0x7c00u);
    else if (a < 0x38800000u) /* below 2^-14: a subnormal, units of 2^-24 (exact scaling) */
        h.x = (uint16_t)(sign | (uint32_t)nearbyintf(tsr_emu_float(a) * 16777216.0f));
    else {
        uint32_t m = ((((a >> 23) - 112u) << 10) | ((a & 0x7fffffu) >> 13)), rest = a & 0x1fffu;
        m += rest > 0x1000u || (rest == 0x1000u && (m & 1u)); /* a carry moves into the exponent */
        h.x = (uint16_t)(sign | m);
    }
    return h;
}

static inline float __half2float(__half h)
{
    uint32_t sign = (uint32_t)(h.x & 0x8000u) << 16, e = (h.x >> 10) & 0x1fu, m = h.x & 0x3ffu;
    if (e == 0)
        return sign ? -ldexpf((float)m, -24) : ldexpf((float)m, -24);
    if (e == 31)
        return tsr_emu_float(sign | 0x7f800000u | (m << 13));
    return tsr_emu_float(sign | ((e + 112u) << 23) | (m << 13));
}
#endif
