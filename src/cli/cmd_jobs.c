/* SPDX-License-Identifier: BSD-3-Clause */
/* tessera jobs [--all] [JOBID...]: the state of jobs tessera submit sent. */
#include "cli/commands.h"
#include "cli/jobs_file.h"
#include "common/fileutil.h"
#include "tessera/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>

static const char usage[] =
    "usage: tessera jobs [--all] [JOBID...]\n"
    "Shows the state of the jobs that tessera submit sent from this account (the last 20, or --all,\n"
    "or the JOBIDs given), as slurmctld knows them: state, requeues, exit code, elapsed time, nodes.\n"
    "The list lives in $TESSERA_STATE_DIR/jobs (default ~/.local/state/tessera/jobs).\n"
    "Exit codes: 0 shown, 2 bad usage, 3 the list is not a regular file, 4 cannot read the list,\n"
    "5 SLURM cannot be reached.\n";

static void elapsed(const tsr_slurm_job_info_t *j, char *buf, size_t n)
{
    double end = j->end_time > j->start_time ? j->end_time : (double)time(NULL);
    if (j->start_time <= 0 || strcmp(j->state, "PENDING") == 0 || strcmp(j->state, "UNKNOWN") == 0) {
        snprintf(buf, n, "-");
        return;
    }
    long s = (long)(end - j->start_time);
    snprintf(buf, n, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

static int show(unsigned long id, const char *config, int *header)
{
    tsr_slurm_job_info_t j;
    int rc = tsr_slurm_job_query(id, &j);
    if (rc)
        return rc;
    char el[32], ex[32];
    elapsed(&j, el, sizeof el);
    if (j.exit_signal)
        snprintf(ex, sizeof ex, "sig %d", j.exit_signal);
    else if (strcmp(j.state, "PENDING") == 0 || strcmp(j.state, "RUNNING") == 0 || strcmp(j.state, "UNKNOWN") == 0)
        snprintf(ex, sizeof ex, "-");
    else
        snprintf(ex, sizeof ex, "%d", j.exit_code);
    if (!(*header)++)
        printf("%-10s %-11s %8s %6s %10s  %-16s %-24s %s\n", "JOBID", "STATE", "REQUEUES", "EXIT", "ELAPSED", "NODES",
               "REASON", "CONFIG");
    printf("%-10lu %-11s %8d %6s %10s  %-16s %-24s %s\n", id, j.state, j.restarts, ex, el, j.nodes[0] ? j.nodes : "-",
           j.reason, config ? config : "-");
    return TSR_OK;
}

int tsr_cmd_jobs(int argc, char **argv)
{
    int all = 0, header = 0, rc = TSR_OK, nids = 0;
    for (int i = 1; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return TSR_OK;
        } else if (strcmp(argv[i], "--all") == 0) {
            all = 1;
        } else if (strtoul(argv[i], &end, 10) > 0 && *end == '\0') {
            nids++;
        } else {
            fprintf(stderr, "tessera: error: jobs: %s '%s'; expected --all or job ids (see tessera jobs --help)\n",
                    argv[i][0] == '-' ? "unknown option" : "unexpected argument", argv[i]);
            return TSR_EINVAL;
        }
    }
    if (nids) {
        for (int i = 1; !rc && i < argc; i++)
            if (strcmp(argv[i], "--all") != 0)
                rc = show(strtoul(argv[i], NULL, 10), NULL, &header);
        goto out;
    }
    char path[4200], line[8400];
    if (tsr_jobs_file_path(path, sizeof path, 0) != 0) {
        fprintf(stderr, "tessera: error: jobs: set HOME or TESSERA_STATE_DIR to find the list of submitted jobs\n");
        return TSR_EINVAL;
    }
    if (access(path, F_OK) != 0) {
        printf("no jobs submitted with tessera submit yet (%s)\n", path);
        return TSR_OK;
    }
    FILE *f = NULL;
    rc = tsr_file_check_input(path, "the list of submitted jobs");
    if (rc == TSR_OK && !(f = fopen(path, "r")))
        rc = tsr_error_set(TSR_EIO, "%s: %s", path, strerror(errno));
    if (rc) {
        fprintf(stderr, "tessera: error: jobs: %s\n", tsr_last_error());
        return rc;
    }
    long total = 0, skip;
    while (fgets(line, sizeof line, f))
        total++;
    skip = all || total <= 20 ? 0 : total - 20;
    rewind(f);
    for (long k = 0; !rc && fgets(line, sizeof line, f); k++) {
        unsigned long id;
        char *tab;
        if (k < skip || sscanf(line, "%lu", &id) != 1)
            continue;
        const char *config = NULL;
        if ((tab = strchr(line, '\t')) && (tab = strchr(tab + 1, '\t'))) {
            config = tab + 1;
            char *t2 = strchr(tab + 1, '\t');
            if (t2)
                *t2 = '\0';
        }
        rc = show(id, config, &header);
    }
    fclose(f);
out:
    if (rc)
        fprintf(stderr, "tessera: error: jobs: %s\n", tsr_last_error());
    return rc;
}
