/* SPDX-License-Identifier: BSD-3-Clause */
/* Progress output of rank 0: see progress.h. */
#include "train/progress.h"
#include "tessera/runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void tsr_progress_init(tsr_progress_t *p, tsr_progress_mode_t mode)
{
    memset(p, 0, sizeof *p);
    p->mode = mode != TSR_PROGRESS_AUTO          ? mode
              : tsr_runtime_stdout_is_terminal() ? TSR_PROGRESS_BAR
                                                 : TSR_PROGRESS_LINES;
}

int tsr_progress_due(const tsr_progress_t *p, long step, long steps)
{
    return p->mode == TSR_PROGRESS_BAR && (step + 1 >= steps || tsr_time_now() - p->last_draw >= 0.1);
}

void tsr_progress_bar(tsr_progress_t *p, long epoch, long epochs, long step, long steps, double loss,
                      double samples_per_s)
{
    if (!tsr_progress_due(p, step, steps))
        return;
    p->last_draw = tsr_time_now();
    char bar[31];
    int fill = steps > 0 ? (int)(30 * (step + 1) / steps) : 30;
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    printf("\r\033[Kepoch %ld/%ld [%s] %ld/%ld loss %.4f %.0f samples/s", epoch + 1, epochs, bar, step + 1, steps, loss,
           samples_per_s);
    fflush(stdout);
    p->drawn = 1;
}

void tsr_progress_clear(tsr_progress_t *p)
{
    if (p->drawn) {
        printf("\r\033[K");
        fflush(stdout);
        p->drawn = 0;
    }
}

void tsr_progress_line(tsr_progress_t *p, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    tsr_progress_clear(p);
    if (p->mode != TSR_PROGRESS_NONE)
        tsr_log(TSR_LOG_INFO, "%s", line);
}
