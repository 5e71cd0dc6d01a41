/* tessera ckpt list DIR | tessera ckpt verify FILE... */
#include "cli/commands.h"
#include "tessera/ckpt.h"
#include "tessera/error.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: tessera ckpt list DIR          list checkpoints, newest first, and whether each verifies\n"
    "       tessera ckpt verify FILE...    check format, version and checksum of each file\n"
    "Exit codes: 0 all sound, 3 a file is damaged or not a checkpoint, 2 bad usage.\n";

static int show(const char *path, int rc, const tsr_ckpt_info_t *info, void *arg)
{
    int *bad = arg;
    if (rc) {
        printf("%-40s  DAMAGED  %s\n", path, tsr_last_error());
        (*bad)++;
    } else {
        printf("%-40s  ok  step %ld  epoch %ld  samples %ld  ranks %ld  %.1f MiB  %s\n", path, info->step,
               info->epoch, info->samples_seen, info->world_size, (double)info->bytes / (1 << 20), info->created);
    }
    return 0;
}

int tsr_cmd_ckpt(int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 3 && !(argc == 2 && argv[1][0] == '-') ? stderr : stdout);
        return argc < 3 && !(argc == 2 && argv[1][0] == '-') ? TSR_EINVAL : TSR_OK;
    }
    int bad = 0;
    if (strcmp(argv[1], "list") == 0 && argc == 3) {
        int n = tsr_ckpt_scan(argv[2], show, &bad);
        if (n < 0) {
            fprintf(stderr, "tessera: error: %s\n", tsr_last_error());
            return n;
        }
        if (n == 0)
            printf("%s: no checkpoints\n", argv[2]);
        return bad ? TSR_EDATA : TSR_OK;
    }
    if (strcmp(argv[1], "verify") == 0) {
        for (int i = 2; i < argc; i++) {
            tsr_ckpt_info_t info;
            int rc = tsr_ckpt_verify(argv[i], &info);
            show(argv[i], rc, rc ? NULL : &info, &bad);
            if (!rc)
                tsr_ckpt_info_free(&info);
        }
        return bad ? TSR_EDATA : TSR_OK;
    }
    fprintf(stderr, "tessera: error: ckpt: unknown action '%s'; expected list DIR or verify FILE\n", argv[1]);
    return TSR_EINVAL;
}
