/* SPDX-License-Identifier: BSD-3-Clause */
/* tessera ckpt list DIR | tessera ckpt verify FILE... */
#include "cli/commands.h"
#include "common/fileutil.h"
#include "tessera/ckpt.h"
#include "tessera/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: tessera ckpt list DIR          list checkpoints, newest first, and whether each verifies\n"
    "       tessera ckpt verify FILE...    check format, version and checksum of each file\n"
    "Exit codes: 0 all sound, 2 bad usage, 3 a file is damaged or not a checkpoint, or DIR is missing\n"
    "or not a directory, 4 DIR cannot be read.\n";

/* Files seen and damaged, and the first damage, for the closing error line. */
typedef struct {
    int seen, bad;
    char first[1024];
} tally_t;

static int show(const char *path, int rc, const tsr_ckpt_info_t *info, void *arg)
{
    tally_t *t = arg;
    t->seen++;
    if (rc) {
        printf("%-40s  DAMAGED  %s\n", path, tsr_last_error());
        if (!t->bad++)
            snprintf(t->first, sizeof t->first, "%s", tsr_last_error());
    } else {
        printf("%-40s  ok  step %ld  epoch %ld  samples %ld  ranks %ld  %.1f MiB  %s\n", path, info->step, info->epoch,
               info->samples_seen, info->world_size, (double)info->bytes / (1 << 20), info->created);
    }
    return 0;
}

/* The directory a user names must be there: an empty listing of a typo
 * would read as "no checkpoints yet". */
static int list(const char *dir, tally_t *t)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return tsr_error_set(errno == ENOENT || errno == ENOTDIR ? TSR_EDATA : TSR_EIO,
                             "ckpt list: %s: %s; expected a checkpoint directory", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return tsr_error_set(TSR_EDATA, "ckpt list: %s is %s; expected a checkpoint directory", dir,
                             tsr_file_kind(st.st_mode));
    int n = tsr_ckpt_scan(dir, show, t);
    if (n < 0)
        return n;
    if (n == 0)
        printf("%s: no checkpoints\n", dir);
    return TSR_OK;
}

int tsr_cmd_ckpt(int argc, char **argv)
{
    const char *action = argc > 1 ? argv[1] : NULL;
    int is_list = action && strcmp(action, "list") == 0, is_verify = action && strcmp(action, "verify") == 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return TSR_OK;
        }
    }
    if (!action)
        return tsr_cli_fail(tsr_error_set(TSR_EINVAL, "ckpt: expected list DIR or verify FILE... (see tessera ckpt "
                                                      "--help)"));
    if (!is_list && !is_verify)
        return tsr_cli_fail(tsr_error_set(TSR_EINVAL, "ckpt: unknown %s '%s'; expected list DIR or verify FILE...",
                                          action[0] == '-' ? "option" : "action", action));
    for (int i = 2; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1])
            return tsr_cli_fail(
                tsr_error_set(TSR_EINVAL, "ckpt %s: unknown option '%s' (see tessera ckpt --help)", action, argv[i]));
    if (is_list && argc != 3)
        return tsr_cli_fail(tsr_error_set(TSR_EINVAL, "ckpt list: expected one directory, got %d arguments", argc - 2));
    if (is_verify && argc < 3)
        return tsr_cli_fail(tsr_error_set(TSR_EINVAL, "ckpt verify: expected one or more checkpoint files"));
    tally_t t = {0};
    if (is_list) {
        int rc = list(argv[2], &t);
        if (rc)
            return tsr_cli_fail(rc);
    } else {
        for (int i = 2; i < argc; i++) {
            tsr_ckpt_info_t info;
            int rc = tsr_ckpt_verify(argv[i], &info);
            show(argv[i], rc, rc ? NULL : &info, &t);
            if (!rc)
                tsr_ckpt_info_free(&info);
        }
    }
    fflush(stdout);
    if (t.bad)
        return tsr_cli_fail(tsr_error_set(TSR_EDATA, "ckpt %s: %d of %d checkpoint%s damaged; the first: %s", action,
                                          t.bad, t.seen, t.seen == 1 ? " is" : "s are", t.first));
    return TSR_OK;
}
