/* tessera submit's batch script, built from the job description so the
 * #SBATCH lines and the libslurm request never disagree. */
#include "cli/submit_script.h"
#include "common/text.h"
#include "tessera/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *b;
    size_t len, cap;
    int failed;
} buf_t;

enum { RAW, SHELL, DIRECTIVE, COMMENT };

/* Appends s as it is (RAW), single-quoted for the shell ('\'' for a quote:
 * nothing inside single quotes is special to bash, newlines included),
 * double-quoted for sbatch's #SBATCH parser (which takes \ as an escape
 * inside quotes and # outside them as a comment), or escaped for a comment
 * line (no newline may end it early). */
static void put(buf_t *o, const char *s, int how)
{
    char esc[4096];
    if (how == COMMENT) {
        tsr_text_printable(s, esc, sizeof esc);
        s = esc;
    }
    size_t need = strlen(s) * 4 + 3;
    if (o->failed)
        return;
    if (o->len + need >= o->cap) {
        size_t ncap = (o->cap + need) * 2;
        char *nb = realloc(o->b, ncap);
        if (!nb) {
            o->failed = 1;
            return;
        }
        o->b = nb;
        o->cap = ncap;
    }
    char *p = o->b + o->len, q = how == SHELL ? '\'' : '"';
    if (how == SHELL || how == DIRECTIVE)
        *p++ = q;
    for (; *s; s++) {
        if (how == SHELL && *s == '\'') {
            memcpy(p, "'\\''", 4);
            p += 4;
            continue;
        }
        if (how == DIRECTIVE && (*s == '"' || *s == '\\'))
            *p++ = '\\';
        *p++ = *s;
    }
    if (how == SHELL || how == DIRECTIVE)
        *p++ = q;
    *p = '\0';
    o->len = (size_t)(p - o->b);
}

/* "#SBATCH --opt=VALUE", VALUE quoted as how says; skipped when empty. */
static void directive(buf_t *o, const char *opt, const char *value, int how)
{
    if (!value || !value[0])
        return;
    put(o, "#SBATCH ", RAW);
    put(o, opt, RAW);
    put(o, "=", RAW);
    put(o, value, how);
    put(o, "\n", RAW);
}

/* Numbers tessera formats itself need no quotes. */
static void directive_num(buf_t *o, const char *opt, long v)
{
    char num[32];
    if (v <= 0)
        return;
    snprintf(num, sizeof num, "%ld", v);
    directive(o, opt, num, RAW);
}

int tsr_submit_check_directive(const char *value, const char *where)
{
    for (const unsigned char *p = (const unsigned char *)value; p && *p; p++)
        if (*p < 0x20 || *p == 0x7F) {
            char shown[512];
            tsr_text_printable(value, shown, sizeof shown);
            return tsr_error_set(TSR_EINVAL, "submit: %s = '%s' holds a control character (byte 0x%02X); a #SBATCH "
                                 "line cannot carry it, so the job is not submitted", where, shown, *p);
        }
    return TSR_OK;
}

char *tsr_submit_script(const tsr_slurm_job_t *job, const char *exe, const char *config, char **sets, int nsets,
                        const char *mpi)
{
    buf_t o = {0};
    char signal[32];
    put(&o, "#!/bin/bash\n", RAW);
    directive(&o, "--job-name", job->name, DIRECTIVE);
    directive_num(&o, "--nodes", job->nodes);
    directive_num(&o, "--ntasks-per-node", job->ntasks_per_node);
    directive_num(&o, "--cpus-per-task", job->cpus_per_task);
    directive_num(&o, "--gpus-per-task", job->gpus_per_task);
    directive_num(&o, "--time", job->time_minutes);
    directive(&o, "--partition", job->partition, DIRECTIVE);
    directive(&o, "--account", job->account, DIRECTIVE);
    directive(&o, "--output", job->output, DIRECTIVE);
    directive(&o, "--chdir", job->workdir, DIRECTIVE);
    if (job->requeue)
        put(&o, "#SBATCH --requeue\n", RAW);
    snprintf(signal, sizeof signal, "USR1@%d", job->warn_seconds);
    if (job->warn_seconds > 0)
        directive(&o, "--signal", signal, RAW);
    put(&o, "# Written by tessera submit from ", RAW);
    put(&o, config, COMMENT);
    put(&o, ".\n# Exit 75 = checkpointed and stopped (walltime margin, preemption): requeue,\n"
            "# and a requeued run (SLURM_RESTART_COUNT > 0) resumes from the newest checkpoint.\n"
            "resume=()\n"
            "[ \"${SLURM_RESTART_COUNT:-0}\" -gt 0 ] && resume=(--resume auto)\n"
            "echo \"tessera: job $SLURM_JOB_ID run $((${SLURM_RESTART_COUNT:-0} + 1)) on "
            "$SLURM_JOB_NODELIST at $(date -Is)\"\n"
            "srun --mpi=", RAW);
    put(&o, mpi, SHELL);
    put(&o, " --kill-on-bad-exit=1 ", RAW);
    put(&o, exe, SHELL);
    put(&o, " train ", RAW);
    put(&o, config, SHELL);
    for (int i = 0; i < nsets; i++) {
        put(&o, " --set ", RAW);
        put(&o, sets[i], SHELL);
    }
    put(&o, " \"${resume[@]}\" &\n"
            "pid=$!\n"
            "# Signals to this shell (scancel --batch, --signal=B:...) go on to the ranks;\n"
            "# after SIGTERM (scancel, preemption) the job is not requeued by this script.\n"
            "cancelled=0\n"
            "trap 'kill -USR1 $pid 2>/dev/null' USR1\n"
            "trap 'cancelled=1; kill -TERM $pid 2>/dev/null' TERM\n"
            "wait $pid; rc=$?\n"
            "while [ $rc -gt 128 ] && kill -0 $pid 2>/dev/null; do wait $pid; rc=$?; done\n"
            "if [ $rc -eq 75 ] && [ $cancelled -eq 1 ]; then\n"
            "  echo \"tessera: checkpointed (exit 75) after SIGTERM (scancel or preemption): not requeueing job $SLURM_JOB_ID\"\n"
            "elif [ $rc -eq 75 ]; then\n"
            "  echo \"tessera: checkpointed (exit 75); requeueing job $SLURM_JOB_ID at $(date -Is)\"\n"
            "  scontrol requeue \"$SLURM_JOB_ID\"\n"
            "fi\n"
            "exit $rc\n", RAW);
    if (o.failed) {
        free(o.b);
        tsr_error_set(TSR_ENOMEM, "submit: out of memory for the batch script");
        return NULL;
    }
    return o.b;
}
