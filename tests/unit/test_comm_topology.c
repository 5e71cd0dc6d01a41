/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of what runtime.topology reads: SLURM hostlist expressions
 * (tsr_topo_hostlist_match, a table of matches and one of malformed
 * expressions that must be refused with a line naming them) and SLURM
 * topology.conf files (tsr_topo_file_leaf: leaves, comments, hosts with a
 * domain, and every way a file can be wrong, each naming file and line). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "comm/topology.h"
#include "tessera/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *expr, *host;
    int want;
} matches[] = {
    {"n[0-15]", "n0", 1},
    {"n[0-15]", "n15", 1},
    {"n[0-15]", "n16", 0},
    {"n[0-15]", "n01", 0}, /* unpadded bounds: no leading zeros */
    {"n[00-15]", "n01", 1},
    {"n[00-15]", "n1", 0}, /* padded bounds: that width only */
    {"n[001-016]", "n016", 1},
    {"rack[1-2]n[01-16]", "rack2n16", 1},
    {"rack[1-2]n[01-16]", "rack3n16", 0},
    {"rack[1-2]n[01-16]", "rack1n17", 0},
    {"a,b[1,3-4],c", "b4", 1},
    {"a,b[1,3-4],c", "b2", 0},
    {"a,b[1,3-4],c", "c", 1},
    {"a,b[1,3-4],c", "a", 1},
    {"node", "node", 1},
    {"node", "node1", 0},
    {"node", "nod", 0},
    {"n[1-3]x", "n2x", 1},
    {"n[1-3]x", "n2", 0},
    {"n[1-3]", "n", 0},
    {"n[0-999999999]", "n123456789", 1},
    {"n[10-12]", "n1", 0},
    {"n[1-12]", "n12", 1},
};

static const char *const malformed[] = {
    "",     "n[", "n[1-",    "n[3-1]",        "n]",    "n[[1]]", "n[]", "n[1,]", "n[a-b]",
    "a,,b", "a,", "n[1-2][", "n[1234567890]", "n[1-]", "n[-3]",
};

static void test_hostlist(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof matches / sizeof matches[0]; i++) {
        int got = tsr_topo_hostlist_match(matches[i].expr, matches[i].host);
        if (got != matches[i].want)
            fail_msg("'%s' against '%s': %d, want %d (%s)", matches[i].expr, matches[i].host, got, matches[i].want,
                     got < 0 ? tsr_last_error() : "");
    }
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        int got = tsr_topo_hostlist_match(malformed[i], "n1");
        if (got != TSR_EINVAL)
            fail_msg("'%s' accepted (%d)", malformed[i], got);
        if (*malformed[i] && !strstr(tsr_last_error(), malformed[i]))
            fail_msg("'%s': the message does not name it: %s", malformed[i], tsr_last_error());
    }
}

/* The file's text in a temporary file; its path in path. */
static void write_file(char *path, size_t len, const char *text)
{
    const char *dir = getenv("TSR_TEST_TMP");
    snprintf(path, len, "%s/topology-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const char good[] = "# leaves of a two-level tree\n"
                           "SwitchName=s0 Nodes=n[0-3] LinkSpeed=100\n"
                           "\n"
                           "switchname=s1 nodes=n[4-7],login  # keys in any case\n"
                           "SwitchName=top Switches=s[0-1]\n";

static void test_file(void **state)
{
    (void)state;
    char path[512], leaf[64];
    write_file(path, sizeof path, good);
    assert_int_equal(tsr_topo_file_leaf(path, "n2", leaf, sizeof leaf), TSR_OK);
    assert_string_equal(leaf, "s0");
    assert_int_equal(tsr_topo_file_leaf(path, "login", leaf, sizeof leaf), TSR_OK);
    assert_string_equal(leaf, "s1");
    assert_int_equal(tsr_topo_file_leaf(path, "n5.cluster.example.org", leaf, sizeof leaf), TSR_OK);
    assert_string_equal(leaf, "s1");
    assert_int_equal(tsr_topo_file_leaf(path, "n8", leaf, sizeof leaf), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "host 'n8' is in no switch's Nodes="));
    assert_non_null(strstr(tsr_last_error(), path));
    assert_int_equal(tsr_topo_file_leaf(path, "s0", leaf, 2), TSR_EINVAL); /* no host s0 either */
    assert_int_equal(tsr_topo_file_leaf(path, "n1", leaf, 2), TSR_EINVAL); /* "s0" does not fit 2 bytes */
    assert_non_null(strstr(tsr_last_error(), "switch name longer than 1 bytes"));
    remove(path);
    assert_int_equal(tsr_topo_file_leaf(path, "n2", leaf, sizeof leaf), TSR_EDATA);
    assert_non_null(strstr(tsr_last_error(), "no such file (expected a SLURM topology.conf)"));
    /* not a regular file: refused before anything opens it (a FIFO would block) */
    assert_int_equal(tsr_topo_file_leaf("/dev/zero", "n2", leaf, sizeof leaf), TSR_EDATA);
    assert_non_null(strstr(tsr_last_error(), "/dev/zero is a character device, not a regular file"));
}

static const struct {
    const char *text, *want; /* want: in the message, after "PATH:" */
} bad[] = {
    {"SwitchName=s0 Nodes=n[0-3]\nSwitchName=s1 Nodes=n[2-5]\n",
     ":2: host 'n2' is in switch s1 here and in s0 (line 1)"},
    {"Nodes=n[0-3]\n", ":1: a line without SwitchName="},
    {"SwitchName=s0 Nodes=n[0-3]\nSwitchName s1\n", ":2: 'SwitchName': expected Key=value"},
    {"SwitchName=s0 Nodes=\n", ":1: 'Nodes=': expected Key=value"},
    {"SwitchName=s0 =n1\n", ":1: '=n1': expected Key=value"},
    {"SwitchName=s0 Nodes=n[3-1]\n", ":1: Nodes=: hostlist 'n[3-1]': bad range"},
    {"SwitchName=s0 Nodes=n[0-3\n", ":1: Nodes=: hostlist 'n[0-3': '[' not closed"},
};

static void test_bad_files(void **state)
{
    (void)state;
    char path[512], leaf[64];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, sizeof path, bad[i].text);
        int rc = tsr_topo_file_leaf(path, "n2", leaf, sizeof leaf);
        if (rc != TSR_EINVAL || !strstr(tsr_last_error(), path) || !strstr(tsr_last_error(), bad[i].want))
            fail_msg("case %zu: rc %d, message '%s', want '%s'", i, rc, tsr_last_error(), bad[i].want);
        remove(path);
    }
    /* a line past the reader's 8 KiB */
    char *big = malloc(20000);
    assert_non_null(big);
    memset(big, 'x', 19998);
    memcpy(big, "SwitchName=s0 Nodes=", 20);
    big[19998] = '\n';
    big[19999] = '\0';
    write_file(path, sizeof path, big);
    free(big);
    assert_int_equal(tsr_topo_file_leaf(path, "n2", leaf, sizeof leaf), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), ":1: line longer than 8192 bytes"));
    remove(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostlist),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
