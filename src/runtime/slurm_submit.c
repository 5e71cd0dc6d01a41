/* SPDX-License-Identifier: BSD-3-Clause */
/* Batch jobs through libslurm: submit one, ask about one. Without
 * TESSERA_WITH_SLURM both say that this build cannot. */
#include "runtime/internal.h"
#include "tessera/error.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef TSR_HAVE_SLURM
#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>
#endif

#ifdef TSR_HAVE_SLURM
extern char **environ;

/* Exported by libslurm but declared in slurm.h only from 23.02 on. */
#if SLURM_VERSION_NUMBER < SLURM_VERSION_NUM(23, 2, 0)
extern const char *slurm_job_reason_string(enum job_state_reason inx);
#endif

static const char *state_name(uint32_t st)
{
    static const char *const names[] = {"PENDING", "RUNNING",   "SUSPENDED", "COMPLETED", "CANCELLED", "FAILED",
                                        "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE",  "OUT_OF_MEMORY"};
    if (st & JOB_REQUEUE)
        return "REQUEUED";
    if (st & JOB_COMPLETING)
        return "COMPLETING";
    st &= JOB_STATE_BASE;
    return st < sizeof names / sizeof *names ? names[st] : "UNKNOWN";
}

/* slurm_init() on a missing configuration ends the process, so look first. */
static int open_slurm(void)
{
    static int inited = 0;
    const char *conf = getenv("SLURM_CONF");
    if (inited)
        return TSR_OK;
    if (!conf || !*conf)
        conf = "/etc/slurm/slurm.conf";
    if (access(conf, R_OK) != 0)
        return tsr_error_set(TSR_ESCHED,
                             "SLURM is not reachable from here: cannot read its configuration %s (%s); "
                             "set SLURM_CONF or run on a login node",
                             conf, strerror(errno));
    slurm_init(NULL);
    inited = 1;
    return TSR_OK;
}

static int refused(const char *what)
{
    int e = slurm_get_errno();
    return tsr_error_set(TSR_ESCHED, "%s: %s", what, slurm_strerror(e));
}

int tsr_slurm_submit(const tsr_slurm_job_t *job, unsigned long *job_id)
{
    job_desc_msg_t d;
    submit_response_msg_t *resp = NULL;
    char tres[64] = "";
    int rc = open_slurm();
    if (rc)
        return rc;
    slurm_init_job_desc_msg(&d);
    d.name = (char *)job->name;
    d.script = (char *)job->script;
    d.work_dir = (char *)job->workdir;
    if (job->output && *job->output)
        d.std_out = (char *)job->output;
    if (job->partition && *job->partition)
        d.partition = (char *)job->partition;
    if (job->account && *job->account)
        d.account = (char *)job->account;
    if (job->nodes > 0)
        d.min_nodes = d.max_nodes = (uint32_t)job->nodes;
    if (job->ntasks_per_node > 0) {
        d.ntasks_per_node = (uint16_t)job->ntasks_per_node;
        d.num_tasks = (uint32_t)(job->ntasks_per_node * (job->nodes > 0 ? job->nodes : 1));
    }
    if (job->cpus_per_task > 0)
        d.cpus_per_task = (uint16_t)job->cpus_per_task;
    if (job->gpus_per_task > 0) {
        snprintf(tres, sizeof tres, "gres:gpu:%ld", job->gpus_per_task);
        d.tres_per_task = tres;
    }
    if (job->time_minutes > 0)
        d.time_limit = (uint32_t)job->time_minutes;
    else if (job->time_minutes == TSR_SLURM_TIME_UNLIMITED)
        d.time_limit = INFINITE;
    d.requeue = job->requeue ? 1 : 0;
    if (job->warn_seconds > 0) {
        d.warn_signal = SIGUSR1;
        d.warn_time = (uint16_t)(job->warn_seconds > 65000 ? 65000 : job->warn_seconds);
        d.warn_flags = 0; /* the tasks, not the batch shell */
    }
    d.user_id = getuid();
    d.group_id = getgid();
    /* Like sbatch --export=ALL: the job starts with this environment. */
    d.environment = environ;
    for (d.env_size = 0; environ[d.env_size]; d.env_size++)
        ;
    if (slurm_submit_batch_job(&d, &resp) != SLURM_SUCCESS || !resp)
        return refused("SLURM refused the job");
    *job_id = resp->job_id;
    slurm_free_submit_response_response_msg(resp);
    return TSR_OK;
}

int tsr_slurm_job_query(unsigned long id, tsr_slurm_job_info_t *info)
{
    job_info_msg_t *msg = NULL;
    int rc = open_slurm();
    memset(info, 0, sizeof *info);
    info->job_id = id;
    if (rc)
        return rc;
    if (slurm_load_job(&msg, (uint32_t)id, SHOW_ALL) != SLURM_SUCCESS) {
        if (slurm_get_errno() == ESLURM_INVALID_JOB_ID) {
            snprintf(info->state, sizeof info->state, "UNKNOWN");
            snprintf(info->reason, sizeof info->reason, "no longer known to slurmctld");
            return TSR_OK;
        }
        return refused("cannot ask SLURM about the job");
    }
    if (msg->record_count < 1) {
        slurm_free_job_info_msg(msg);
        snprintf(info->state, sizeof info->state, "UNKNOWN");
        return TSR_OK;
    }
    slurm_job_info_t *j = &msg->job_array[0];
    snprintf(info->name, sizeof info->name, "%s", j->name ? j->name : "");
    snprintf(info->state, sizeof info->state, "%s", state_name(j->job_state));
    snprintf(info->reason, sizeof info->reason, "%s", slurm_job_reason_string(j->state_reason));
    snprintf(info->nodes, sizeof info->nodes, "%s", j->nodes ? j->nodes : "");
    info->restarts = j->restart_cnt;
    if (WIFEXITED(j->exit_code))
        info->exit_code = WEXITSTATUS(j->exit_code);
    if (WIFSIGNALED(j->exit_code))
        info->exit_signal = WTERMSIG(j->exit_code);
    info->submit_time = (double)j->submit_time;
    info->start_time = (double)j->start_time;
    info->end_time = (double)j->end_time;
    slurm_free_job_info_msg(msg);
    return TSR_OK;
}

#else /* !TSR_HAVE_SLURM */

int tsr_slurm_submit(const tsr_slurm_job_t *job, unsigned long *job_id)
{
    (void)job;
    (void)job_id;
    return tsr_error_set(TSR_ENOTSUP, "this tessera was built without libslurm (TESSERA_WITH_SLURM=OFF or libslurm-dev "
                                      "missing); submit the script from 'tessera submit --print-script' with sbatch");
}

int tsr_slurm_job_query(unsigned long id, tsr_slurm_job_info_t *info)
{
    memset(info, 0, sizeof *info);
    info->job_id = id;
    return tsr_error_set(TSR_ENOTSUP, "this tessera was built without libslurm (TESSERA_WITH_SLURM=OFF or libslurm-dev "
                                      "missing); use squeue or scontrol show job");
}
#endif
