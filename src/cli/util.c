/* SPDX-License-Identifier: BSD-3-Clause */
/* Small helpers the subcommands share (declared in commands.h). */
#include "cli/commands.h"
#include "tessera/error.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

int tsr_cli_fail(int rc)
{
    fprintf(stderr, "tessera: error: %s\n", tsr_last_error());
    return rc;
}

int tsr_cli_in_list(const char *s, const char *const *list)
{
    for (int i = 0; list && list[i]; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

int tsr_cli_bad_option(const char *cmd, const char *arg, const char *const *valued)
{
    if (tsr_cli_in_list(arg, valued))
        return tsr_error_set(TSR_EINVAL, "%s: %s needs a value (see tessera %s --help)", cmd, arg, cmd);
    return tsr_error_set(TSR_EINVAL, "%s: unknown option '%s' (see tessera %s --help)", cmd, arg, cmd);
}

int tsr_cli_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}
