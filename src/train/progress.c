#include "train/progress.h"
#include "tessera/runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void tsr_progress_init(tsr_progress_t *p, const char *mode_name)
{
    memset(p, 0, sizeof *p);
    if (strcmp(mode_name, "none") == 0)
        p->mode = 0;
    else if (strcmp(mode_name, "bar") == 0)
        p->mode = 1;
    else if (strcmp(mode_name, "lines") == 0)
        p->mode = 2;
    else
        p->mode = tsr_runtime_stdout_is_terminal() ? 1 : 2;
}

int tsr_progress_due(const tsr_progress_t *p, long step, long steps)
{
    return p->mode == 1 && (step + 1 >= steps || tsr_time_now() - p->last_draw >= 0.1);
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
    printf("\r\033[Kepoch %ld/%ld [%s] %ld/%ld loss %.4f %.0f samples/s", epoch + 1, epochs, bar, step + 1, steps,
           loss, samples_per_s);
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
    if (p->mode != 0)
        tsr_log(TSR_LOG_INFO, "%s", line);
}
