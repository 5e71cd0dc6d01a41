/* Progress output of rank 0: a bar on a terminal, plain lines in a log. */
#ifndef TSR_TRAIN_PROGRESS_H
#define TSR_TRAIN_PROGRESS_H

typedef struct {
    int mode;           /* 0 none, 1 bar, 2 lines */
    double last_draw;
    int drawn;          /* a bar is on screen and needs a newline */
} tsr_progress_t;

/* mode_name: auto|bar|lines|none; auto picks bar when output reaches a
 * terminal (tsr_runtime_stdout_is_terminal: the launcher's, under mpirun). */
void tsr_progress_init(tsr_progress_t *p, const char *mode_name);
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
