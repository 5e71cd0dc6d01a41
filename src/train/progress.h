/* SPDX-License-Identifier: BSD-3-Clause */
/* Progress output of rank 0: a bar on a terminal, plain lines in a log. */
#ifndef TSR_TRAIN_PROGRESS_H
#define TSR_TRAIN_PROGRESS_H
#include "tessera/options.h"

typedef struct {
    tsr_progress_mode_t mode; /* BAR, LINES or NONE (AUTO is resolved) */
    double last_draw;
    int drawn; /* a bar is on screen and needs a newline */
} tsr_progress_t;

/* AUTO picks BAR when output reaches a terminal
 * (tsr_runtime_stdout_is_terminal: the launcher's, under mpirun), else LINES. */
void tsr_progress_init(tsr_progress_t *p, tsr_progress_mode_t mode);
/* Redraws the bar (at most 10 times a second). */
/* Whether tsr_progress_bar would draw now (it redraws at most every 0.1 s
 * and at an epoch's last step), so the caller fetches the loss only then. */
int tsr_progress_due(const tsr_progress_t *p, long step, long steps);
void tsr_progress_bar(tsr_progress_t *p, long epoch, long epochs, long step, long steps, double loss,
                      double samples_per_s);
/* Erases a bar on screen so other output starts on a clean line. */
void tsr_progress_clear(tsr_progress_t *p);
/* Prints one line, ending any bar first. */
void tsr_progress_line(tsr_progress_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
