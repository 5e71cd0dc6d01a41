/* SPDX-License-Identifier: BSD-3-Clause */
/* Calls into user code (plugin layers, apply plugins) under a guard: a
 * crash inside it (SIGSEGV, SIGBUS, SIGFPE, SIGILL) returns to the caller
 * instead of killing the process, so the caller can name the plugin and
 * the signal in an error and stop every rank cleanly. The plugin's state
 * is unknown afterwards: callers write nothing from it. */
#ifndef TSR_COMMON_SIGGUARD_H
#define TSR_COMMON_SIGGUARD_H

/* fn(arg)'s result, with *sig = 0; or, when one of the signals arrived
 * inside it, TSR_EINTERNAL with *sig set (no message: the caller sets it).
 * The previous handlers are restored either way. */
int tsr_sigguard_run(int (*fn)(void *), void *arg, int *sig);

#endif
