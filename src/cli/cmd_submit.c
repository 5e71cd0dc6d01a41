/* SPDX-License-Identifier: BSD-3-Clause */
/* tessera submit CONFIG [--nodes N ...]: a SLURM batch job built from the
 * config's [submit] section, sent through libslurm. */
#include "cli/commands.h"
#include "cli/jobs_file.h"
#include "cli/submit_script.h"
#include "tessera/config.h"
#include "tessera/error.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: tessera submit CONFIG [--nodes N] [--ntasks-per-node M] [--time T] [--partition P]\n"
    "                             [--gpus-per-task G] [--cpus-per-task C] [--account A] [--job-name NAME]\n"
    "                             [--set section.key=value ...] [--print-script] [--parsable]\n"
    "Submits a SLURM batch job that trains CONFIG with srun on every rank (through libslurm, like sbatch).\n"
    "Defaults come from the config's [submit] section; the options override them. The job asks for\n"
    "SIGUSR1 runtime.walltime_margin_seconds before its end, checkpoints, exits 75 and requeues itself;\n"
    "a requeued job resumes from the newest checkpoint. Prints the job id; 'tessera jobs' shows its state.\n"
    "  --time T          MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS\n"
    "  --print-script    print the batch script (with #SBATCH lines) and exit without submitting\n"
    "  --parsable        print only the job id\n"
    "Every string reaches the script's shell single-quoted; a name, partition, account or log name\n"
    "with a newline or other control character (which no #SBATCH line can hold) is refused.\n"
    "Exit codes: 0 submitted, 2 bad usage or configuration, 3 CONFIG is not a regular file, 4 cannot\n"
    "write, 5 SLURM refused the job or cannot be reached (its reason is quoted).\n";

static long arg_long(const char *opt, const char *v, int *rc)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == '\0' || *end || x < 0 || x > 1000000)
        *rc = tsr_error_set(TSR_EINVAL, "submit: %s '%s': expected a non-negative whole number", opt, v);
    return x;
}

int tsr_cmd_submit(int argc, char **argv)
{
    static const char *const valued[] = {"--set",
                                         "--nodes",
                                         "-N",
                                         "--ntasks-per-node",
                                         "--gpus-per-task",
                                         "--cpus-per-task",
                                         "-c",
                                         "--time",
                                         "-t",
                                         "--partition",
                                         "-p",
                                         "--account",
                                         "-A",
                                         "--job-name",
                                         "-J",
                                         NULL};
    tsr_config_t *cfg = NULL;
    const char *path = NULL;
    const char *o_time = NULL, *o_part = NULL, *o_acct = NULL, *o_name = NULL;
    long o_nodes = -1, o_tpn = -1, o_gpt = -1, o_cpt = -1;
    int print_script = 0, parsable = 0, rc, nsets = 0;
    char **sets = calloc((size_t)argc + 1, sizeof *sets);
    char *script = NULL;
    char exe[PATH_MAX], config[PATH_MAX], cwd[PATH_MAX];

    if (!sets)
        return tsr_error_set(TSR_ENOMEM, "submit: out of memory");
    rc = tsr_config_create(&cfg);
    for (int i = 1; !rc && i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            goto done;
        } else if (strcmp(a, "--print-script") == 0) {
            print_script = 1;
        } else if (strcmp(a, "--parsable") == 0) {
            parsable = 1;
        } else if (a[0] == '-' && a[1] && (!v || !tsr_cli_in_list(a, valued))) {
            rc = tsr_cli_bad_option("submit", a, v ? NULL : valued);
        } else if (strcmp(a, "--set") == 0) {
            sets[nsets++] = argv[++i];
        } else if (strcmp(a, "--nodes") == 0 || strcmp(a, "-N") == 0) {
            o_nodes = arg_long(a, argv[++i], &rc);
        } else if (strcmp(a, "--ntasks-per-node") == 0) {
            o_tpn = arg_long(a, argv[++i], &rc);
        } else if (strcmp(a, "--gpus-per-task") == 0) {
            o_gpt = arg_long(a, argv[++i], &rc);
        } else if (strcmp(a, "--cpus-per-task") == 0 || strcmp(a, "-c") == 0) {
            o_cpt = arg_long(a, argv[++i], &rc);
        } else if (strcmp(a, "--time") == 0 || strcmp(a, "-t") == 0) {
            o_time = argv[++i];
        } else if (strcmp(a, "--partition") == 0 || strcmp(a, "-p") == 0) {
            o_part = argv[++i];
        } else if (strcmp(a, "--account") == 0 || strcmp(a, "-A") == 0) {
            o_acct = argv[++i];
        } else if (strcmp(a, "--job-name") == 0 || strcmp(a, "-J") == 0) {
            o_name = argv[++i];
        } else if (path) {
            rc = tsr_error_set(TSR_EINVAL,
                               "submit: unexpected argument '%s' after CONFIG %s; see tessera submit --help", a, path);
        } else {
            path = a;
        }
    }
    if (!rc && !path)
        rc = tsr_error_set(TSR_EINVAL, "submit: no CONFIG file given; see tessera submit --help");
    if (!rc)
        rc = tsr_config_load(cfg, path);
    for (int i = 0; !rc && i < nsets; i++)
        rc = tsr_config_set(cfg, sets[i]);
    if (rc)
        goto done;
    if (!realpath(path, config) || !getcwd(cwd, sizeof cwd)) {
        rc = tsr_error_set(TSR_EIO, "submit: %s: cannot resolve the path", path);
        goto done;
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        rc = tsr_error_set(TSR_ESYS, "submit: cannot find the tessera program (/proc/self/exe)");
        goto done;
    }
    exe[n] = '\0';

    tsr_slurm_job_t job = {0};
    const char *tstr = o_time ? o_time : tsr_config_get(cfg, "submit", "time");
    job.time_minutes = tsr_slurm_parse_time(tstr);
    if (job.time_minutes <= 0 && job.time_minutes != TSR_SLURM_TIME_UNLIMITED) {
        rc = tsr_error_set(TSR_EINVAL,
                           "submit: time '%s' (%s): expected MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or "
                           "D-HH:MM:SS, more than zero and at most %d minutes, or UNLIMITED",
                           tstr, o_time ? "--time" : tsr_config_origin(cfg, "submit", "time"), INT_MAX);
        goto done;
    }
    job.nodes = o_nodes >= 0 ? o_nodes : tsr_config_get_long(cfg, "submit", "nodes");
    job.ntasks_per_node = o_tpn >= 0 ? o_tpn : tsr_config_get_long(cfg, "submit", "ntasks_per_node");
    job.gpus_per_task = o_gpt >= 0 ? o_gpt : tsr_config_get_long(cfg, "submit", "gpus_per_task");
    job.cpus_per_task = o_cpt >= 0 ? o_cpt : tsr_config_get_long(cfg, "submit", "cpus_per_task");
    if (job.nodes < 1 || job.ntasks_per_node < 1) {
        rc = tsr_error_set(TSR_EINVAL, "submit: --nodes and --ntasks-per-node must be at least 1");
        goto done;
    }
    job.partition = o_part ? o_part : tsr_config_get(cfg, "submit", "partition");
    job.account = o_acct ? o_acct : tsr_config_get(cfg, "submit", "account");
    job.output = tsr_config_get(cfg, "submit", "output");
    job.workdir = cwd;
    job.requeue = 1;
    job.warn_seconds = (int)tsr_config_get_double(cfg, "runtime", "walltime_margin_seconds");
    char name[256];
    const char *base = strrchr(config, '/') ? strrchr(config, '/') + 1 : config;
    snprintf(name, sizeof name, "%s", o_name ? o_name : tsr_config_get(cfg, "submit", "job_name"));
    if (!name[0]) {
        snprintf(name, sizeof name, "tessera-%.200s", base);
        char *dot = strrchr(name, '.');
        if (dot && dot != name)
            *dot = '\0';
        /* A name made up here must not fail on the config's odd file name. */
        for (char *c = name; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7F)
                *c = '_';
    }
    job.name = name;
    /* Each reaches a #SBATCH line and slurmctld: refused with where it came from. */
    const struct {
        const char *value, *option, *key;
    } fields[] = {
        {name, o_name ? "--job-name" : NULL, "job_name"},
        {job.partition, o_part ? "--partition" : NULL, "partition"},
        {job.account, o_acct ? "--account" : NULL, "account"},
        {job.output, NULL, "output"},
    };
    for (size_t i = 0; !rc && i < sizeof fields / sizeof *fields; i++) {
        char where[256];
        if (fields[i].option)
            snprintf(where, sizeof where, "%s", fields[i].option);
        else
            snprintf(where, sizeof where, "[submit] %s (%s)", fields[i].key,
                     tsr_config_origin(cfg, "submit", fields[i].key));
        rc = tsr_submit_check_directive(fields[i].value, where);
    }
    if (!rc)
        rc = tsr_submit_check_directive(cwd, "the working directory");
    if (rc)
        goto done;
    script = tsr_submit_script(&job, exe, config, sets, nsets, tsr_config_get(cfg, "submit", "mpi"));
    if (!script) {
        rc = TSR_ENOMEM;
        goto done;
    }
    job.script = script;
    if (print_script) {
        fputs(script, stdout);
        goto done;
    }
    unsigned long id = 0;
    rc = tsr_slurm_submit(&job, &id);
    if (rc) {
        tsr_error_prefix(rc, "submit: ");
        goto done;
    }
    if (parsable) {
        printf("%lu\n", id);
    } else {
        char out[PATH_MAX + 64];
        const char *pat = job.output, *j = strstr(pat, "%j");
        if (j)
            snprintf(out, sizeof out, "%.*s%lu%s", (int)(j - pat), pat, id, j + 2);
        else
            snprintf(out, sizeof out, "%s", pat);
        printf("Submitted batch job %lu\n", id);
        printf("tessera: %s, %ld node%s x %ld rank%s, time %s%s%s; log %s%s%s\n", name, job.nodes,
               job.nodes == 1 ? "" : "s", job.ntasks_per_node, job.ntasks_per_node == 1 ? "" : "s", tstr,
               job.partition[0] ? ", partition " : "", job.partition, out[0] == '/' ? "" : cwd,
               out[0] == '/' ? "" : "/", out);
    }
    fflush(stdout);
    if (tsr_jobs_file_add(id, config, cwd) != TSR_OK)
        fprintf(stderr, "tessera: warning: %s; tessera jobs will not list job %lu\n", tsr_last_error(), id);
done:
    if (rc)
        fprintf(stderr, "tessera: error: %s\n", tsr_last_error());
    free(script);
    free(sets);
    tsr_config_destroy(cfg);
    return rc;
}
