/* SPDX-License-Identifier: BSD-3-Clause */
/* TSR_API marks the functions of tessera's public C API. libtessera.so is
 * built with -fvisibility=hidden, so these, and nothing else, are exported
 * (a test checks its dynamic symbols against the installed headers). */
#ifndef TESSERA_API_H
#define TESSERA_API_H

#if defined(__GNUC__) || defined(__clang__)
#define TSR_API __attribute__((visibility("default")))
#else
#define TSR_API
#endif

#endif
