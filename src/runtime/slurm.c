/* SPDX-License-Identifier: BSD-3-Clause */
/* SLURM job facts from the environment, and the walltime left from
 * libslurm (when built with TESSERA_WITH_SLURM). */
#include "runtime/internal.h"
#include "tessera/error.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#ifdef TSR_HAVE_SLURM
#include <slurm/slurm.h>
#endif

static long env_long(const char *name, long fallback)
{
    const char *v = getenv(name);
    char *end;
    if (!v || !*v)
        return fallback;
    long x = strtol(v, &end, 10);
    return *end ? fallback : x;
}

static void env_copy(const char *name, char *dst, size_t n)
{
    const char *v = getenv(name);
    snprintf(dst, n, "%s", v ? v : "");
}

/* SLURM_TASKS_PER_NODE reads like "2(x3),1": entry i of the expanded list. */
static int tasks_on_node(const char *spec, long node)
{
    const char *p = spec;
    while (p && *p) {
        char *end;
        long n = strtol(p, &end, 10), reps = 1;
        if (end == p)
            return 0;
        if (strncmp(end, "(x", 2) == 0) {
            reps = strtol(end + 2, &end, 10);
            if (*end == ')')
                end++;
        }
        if (node < reps)
            return (int)n;
        node -= reps;
        p = *end == ',' ? end + 1 : NULL;
    }
    return 0;
}

void tsr_slurm_facts_read(tsr_slurm_facts_t *f)
{
    memset(f, 0, sizeof *f);
    f->job_id = env_long("SLURM_JOB_ID", -1);
    if (f->job_id < 0)
        f->job_id = env_long("SLURM_JOBID", -1);
    f->in_slurm = f->job_id >= 0;
    f->step_id = env_long("SLURM_STEP_ID", env_long("SLURM_STEPID", -1));
    f->restart_count = (int)env_long("SLURM_RESTART_COUNT", 0);
    f->local_id = (int)env_long("SLURM_LOCALID", -1);
    f->node_count = (int)env_long("SLURM_JOB_NUM_NODES", env_long("SLURM_NNODES", 0));
    const char *tpn = getenv("SLURM_TASKS_PER_NODE");
    if (tpn)
        f->tasks_per_node = tasks_on_node(tpn, env_long("SLURM_NODEID", 0));
    env_copy("SLURM_JOB_NODELIST", f->nodelist, sizeof f->nodelist);
    if (!f->nodelist[0])
        env_copy("SLURM_NODELIST", f->nodelist, sizeof f->nodelist);
    env_copy("SLURM_JOB_PARTITION", f->partition, sizeof f->partition);
    f->env_end_time = (double)env_long("SLURM_JOB_END_TIME", 0);
}

const tsr_slurm_facts_t *tsr_runtime_slurm(const tsr_runtime_t *rt) { return &rt->slurm; }

int tsr_slurm_linked(void)
{
#ifdef TSR_HAVE_SLURM
    return 1;
#else
    return 0;
#endif
}

static double unix_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#ifdef TSR_HAVE_SLURM
/* The job's end time and time limit from slurmctld; 0 where unknown. A job
 * without a limit (INFINITE) has no end. */
static void query_job(tsr_runtime_t *rt, double *end, double *limit)
{
    job_info_msg_t *msg = NULL;
    *end = *limit = 0;
    if (!rt->slurm_inited) {
        slurm_init(NULL);
        rt->slurm_inited = 1;
    }
    if (slurm_load_job(&msg, (uint32_t)rt->slurm.job_id, SHOW_ALL) != SLURM_SUCCESS || !msg)
        return;
    if (msg->record_count > 0) {
        const slurm_job_info_t *j = &msg->job_array[0];
        if (j->time_limit != INFINITE && j->time_limit != NO_VAL && j->end_time > 0) {
            *end = (double)j->end_time;
            *limit = 60.0 * j->time_limit;
        }
    }
    slurm_free_job_info_msg(msg);
}
#endif

double tsr_runtime_walltime_left(tsr_runtime_t *rt)
{
    if (!rt->slurm.in_slurm)
        return -1;
    double mono = tsr_time_now();
    if (mono >= rt->next_query) {
        rt->next_query = mono + TSR_WALLTIME_REFRESH;
        double end = rt->slurm.env_end_time;
#ifdef TSR_HAVE_SLURM
        double asked, limit;
        query_job(rt, &asked, &limit);
        if (asked > 0) {
            end = asked;
            rt->time_limit = limit;
        } else if (rt->end_time > 0) {
            end = rt->end_time; /* keep what we knew if slurmctld does not answer */
        }
#endif
        rt->end_time = end;
    }
    if (rt->end_time <= 0)
        return -1;
    return rt->end_time - unix_now();
}

double tsr_runtime_walltime_limit(tsr_runtime_t *rt)
{
    if (rt->end_time <= 0 && tsr_runtime_walltime_left(rt) < 0)
        return -1;
    return rt->time_limit > 0 ? rt->time_limit : -1;
}

void tsr_runtime_slurm_close(tsr_runtime_t *rt)
{
#ifdef TSR_HAVE_SLURM
    if (rt->slurm_inited)
        slurm_fini();
    rt->slurm_inited = 0;
#else
    (void)rt;
#endif
}

/* SLURM's --time forms; minutes, rounded up. Each number is at most
 * TIME_FIELD_MAX and the result at most INT_MAX minutes, so the arithmetic
 * cannot overflow and the result fits libslurm's 32-bit time limit below
 * its INFINITE and NO_VAL. */
#define TIME_FIELD_MAX 100000000L

long tsr_slurm_parse_time(const char *s)
{
    long f[4] = {0, 0, 0, 0}, days = 0;
    int n = 0;
    const char *p = s;
    if (!s || !*s)
        return -1;
    if (strcasecmp(s, "UNLIMITED") == 0 || strcasecmp(s, "INFINITE") == 0)
        return TSR_SLURM_TIME_UNLIMITED;
    const char *dash = strchr(s, '-');
    if (dash) {
        char *end;
        if (!isdigit((unsigned char)*s))
            return -1;
        days = strtol(s, &end, 10);
        if (end != dash || days > TIME_FIELD_MAX)
            return -1;
        p = dash + 1;
    }
    while (*p) {
        char *end;
        if (!isdigit((unsigned char)*p) || n == 3)
            return -1;
        f[n] = strtol(p, &end, 10);
        if (f[n++] > TIME_FIELD_MAX)
            return -1;
        if (*end == ':')
            end++;
        else if (*end)
            return -1;
        p = end;
    }
    long secs;
    if (dash) { /* D-H, D-H:M, D-H:M:S */
        if (n == 0)
            return -1;
        secs = ((days * 24 + f[0]) * 60 + f[1]) * 60 + f[2];
    } else if (n == 1) { /* M */
        secs = f[0] * 60;
    } else if (n == 2) { /* M:S */
        secs = f[0] * 60 + f[1];
    } else if (n == 3) { /* H:M:S */
        secs = (f[0] * 60 + f[1]) * 60 + f[2];
    } else {
        return -1;
    }
    long minutes = (secs + 59) / 60;
    return minutes > INT_MAX ? -1 : minutes;
}
