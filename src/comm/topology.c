/* SPDX-License-Identifier: BSD-3-Clause */
/* The ranks' groups for the hierarchical allreduce (topology.h): each rank
 * finds its own leaf (or node), the keys are gathered, and every rank
 * builds the same groups from them, or fails with the same line. */
#include "comm/topology.h"
#include "tessera/error.h"
#include "common/fileutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { KEY = 256, LINE = 8192 }; /* LINE: the longest line read */

/* One topology.conf line's SwitchName= and Nodes= values (NULL: absent);
 * the line is cut in place. Comments run from '#'. */
static int parse_line(char *line, const char *path, int lineno, char **name, char **nodes)
{
    *name = *nodes = NULL;
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    int tokens = 0;
    for (char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
        char *eq = strchr(tok, '=');
        tokens++;
        if (!eq || eq == tok || !eq[1])
            return tsr_error_set(TSR_EINVAL, "%s:%d: '%s': expected Key=value (SwitchName=, Nodes=, Switches=)", path,
                                 lineno, tok);
        *eq = '\0';
        if (strcasecmp(tok, "SwitchName") == 0)
            *name = eq + 1;
        else if (strcasecmp(tok, "Nodes") == 0)
            *nodes = eq + 1;
    }
    if (tokens && !*name)
        return tsr_error_set(TSR_EINVAL, "%s:%d: a line without SwitchName=; expected SwitchName=NAME Nodes=HOSTLIST",
                             path, lineno);
    return TSR_OK;
}

/* The next line of f into line[0..LINE] (its newline dropped): 1, or 0 at
 * the end, or TSR_EINVAL for a NUL byte or a line past LINE bytes. Read a
 * byte at a time so a hostile file costs no more memory than LINE. */
static int next_line(FILE *f, char *line, const char *path, int lineno)
{
    size_t n = 0;
    int c;
    while ((c = getc(f)) != EOF && c != '\n') {
        if (c == '\0')
            return tsr_error_set(TSR_EINVAL, "%s:%d: a NUL byte; expected a text file", path, lineno);
        if (n == LINE)
            return tsr_error_set(TSR_EINVAL, "%s:%d: line longer than %d bytes", path, lineno, LINE);
        line[n++] = (char)c;
    }
    line[n] = '\0';
    return c == EOF && n == 0 ? 0 : 1;
}

/* The leaf of host in the file (found = 0 when none), strict about syntax. */
static int find_leaf(FILE *f, const char *path, const char *host, char *leaf, size_t len, int *found)
{
    char line[LINE + 1];
    int lineno = 0, at = 0, rc = TSR_OK, more = 0;
    *found = 0;
    errno = 0;
    while (!rc && (more = next_line(f, line, path, lineno + 1)) == 1) {
        lineno++;
        char *name, *nodes;
        if ((rc = parse_line(line, path, lineno, &name, &nodes)) || !nodes)
            continue;
        int hit = tsr_topo_hostlist_match(nodes, host);
        if (hit < 0)
            rc = tsr_error_prefix(hit, "%s:%d: Nodes=: ", path, lineno);
        else if (hit && *found)
            rc = tsr_error_set(TSR_EINVAL,
                               "%s:%d: host '%s' is in switch %s here and in %s (line %d); a host has one leaf", path,
                               lineno, host, name, leaf, at);
        else if (hit && strlen(name) >= len)
            rc = tsr_error_set(TSR_EINVAL, "%s:%d: switch name longer than %zu bytes", path, lineno, len - 1);
        else if (hit) {
            strcpy(leaf, name);
            *found = 1;
            at = lineno;
        }
    }
    if (!rc && more < 0)
        rc = more;
    if (!rc && ferror(f))
        rc = tsr_error_set(TSR_EIO, "%s: read failed: %s", path, strerror(errno ? errno : EIO));
    return rc;
}

int tsr_topo_file_leaf(const char *path, const char *host, char *leaf, size_t len)
{
    /* a regular file only: a FIFO would block every rank, a device never end */
    int rc = tsr_file_check_input(path, "a SLURM topology.conf");
    if (rc)
        return rc;
    FILE *f = fopen(path, "r");
    if (!f)
        return tsr_error_set(TSR_EIO, "cannot read topology file %s: %s", path, strerror(errno));
    int found = 0;
    rc = find_leaf(f, path, host, leaf, len, &found);
    char shorter[KEY];
    const char *dot = strchr(host, '.');
    if (!rc && !found && dot && (size_t)(dot - host) < sizeof shorter) {
        snprintf(shorter, sizeof shorter, "%.*s", (int)(dot - host), host);
        rewind(f);
        rc = find_leaf(f, path, shorter, leaf, len, &found);
    }
    fclose(f);
    if (!rc && !found)
        rc = tsr_error_set(TSR_EINVAL, "%s: host '%s' is in no switch's Nodes=; expected every host of the job listed",
                           path, host);
    return rc;
}

/* This rank's key (empty: no topology) or its error, in rec[0..KEY). */
static int local_key(const char *spec, char *key, char *why, size_t whylen)
{
    char host[MPI_MAX_PROCESSOR_NAME] = "";
    int hl = 0;
    key[0] = '\0';
    if (!spec || !*spec || strcmp(spec, "auto") == 0) {
        const char *addr = getenv("SLURM_TOPOLOGY_ADDR");
        const char *last = addr ? strrchr(addr, '.') : NULL;
        if (!last) {
            snprintf(why, whylen, "SLURM_TOPOLOGY_ADDR %s", addr ? "names no switch" : "is unset");
            return TSR_OK;
        }
        if ((size_t)(last - addr) >= KEY)
            return tsr_error_set(TSR_EINVAL, "SLURM_TOPOLOGY_ADDR is longer than %d bytes", KEY - 1);
        snprintf(key, KEY, "%.*s", (int)(last - addr), addr);
        return TSR_OK;
    }
    if (strcmp(spec, "none") == 0) {
        snprintf(why, whylen, "runtime.topology = none");
        return TSR_OK;
    }
    if (MPI_Get_processor_name(host, &hl) != MPI_SUCCESS)
        return tsr_error_set(TSR_EMPI, "MPI_Get_processor_name failed");
    if (strcmp(spec, "node") == 0) {
        snprintf(key, KEY, "%s", host);
        return TSR_OK;
    }
    return tsr_topo_file_leaf(spec, host, key, KEY);
}

void tsr_topo_destroy(tsr_topo_t *t)
{
    if (!t)
        return;
    free(t->members);
    t->members = NULL;
    t->G = t->L = 0;
}

/* qsort_r's comparison of ranks by their keys (keys[r * KEY]), then by rank. */
static int by_key(const void *a, const void *b, void *keys)
{
    const char *k = keys;
    int x = *(const int *)a, y = *(const int *)b;
    int c = strcmp(k + (size_t)x * KEY, k + (size_t)y * KEY);
    return c ? c : (x > y) - (x < y);
}

/* Groups from everyone's keys (all[r * KEY]); G = 0 with why when unusable. */
static int group(tsr_topo_t *t, const char *all, int size, int rank)
{
    int *gid = malloc((size_t)size * sizeof *gid), *count = calloc((size_t)size, sizeof *count);
    int rc = TSR_OK;
    if (!gid || !count) {
        rc = tsr_error_set(TSR_ENOMEM, "comm: out of memory for the topology of %d ranks", size);
        goto done;
    }
    /* Ranks sorted by key (then rank): each run of equal keys is a group,
     * numbered in the order of its lowest rank. O(P log P) for big jobs. */
    int *order = malloc((size_t)size * sizeof *order), *first = malloc((size_t)size * sizeof *first), G = 0;
    if (!order || !first) {
        free(order);
        free(first);
        rc = tsr_error_set(TSR_ENOMEM, "comm: out of memory for the topology of %d ranks", size);
        goto done;
    }
    for (int r = 0; r < size; r++)
        order[r] = r;
    qsort_r(order, (size_t)size, sizeof *order, by_key, (void *)all);
    for (int i = 0; i < size; i++) { /* gid = the lowest rank of the run for now */
        int head = i > 0 && strcmp(all + (size_t)order[i] * KEY, all + (size_t)order[i - 1] * KEY) == 0
                       ? gid[order[i - 1]]
                       : order[i];
        gid[order[i]] = head;
    }
    for (int r = 0; r < size; r++) /* heads in rank order get 0, 1, 2, ... */
        if (gid[r] == r)
            first[r] = G++;
    for (int r = 0; r < size; r++)
        count[gid[r] = first[gid[r]]]++;
    free(order);
    free(first);
    int L = count[0];
    for (int g = 1; g < G; g++)
        if (count[g] != L) {
            snprintf(t->why, sizeof t->why, "the groups differ in size (%d ranks in '%.64s', %d in another)", L, all,
                     count[g]);
            goto done;
        }
    if (G < 2 || L < 2) {
        snprintf(t->why, sizeof t->why, "%d group%s of %d rank%s ('%.64s')", G, G == 1 ? "" : "s", L, L == 1 ? "" : "s",
                 all);
        goto done;
    }
    if (!(t->members = malloc((size_t)size * sizeof *t->members))) {
        rc = tsr_error_set(TSR_ENOMEM, "comm: out of memory for the topology of %d ranks", size);
        goto done;
    }
    memset(count, 0, (size_t)G * sizeof *count);
    for (int r = 0; r < size; r++) {
        int g = gid[r];
        if (r == rank) {
            t->gi = g;
            t->li = count[g];
        }
        t->members[(size_t)g * (size_t)L + (size_t)count[g]++] = r;
    }
    t->G = G;
    t->L = L;
done:
    free(gid);
    free(count);
    return rc;
}

int tsr_topo_create(MPI_Comm comm, const char *spec, tsr_topo_t *t)
{
    int rank, size, rc;
    memset(t, 0, sizeof *t);
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    /* rec: a status byte, then the key or the error line */
    char rec[1 + KEY] = "", *all = malloc((size_t)size * (1 + KEY)), *keys = malloc((size_t)size * KEY);
    if (!all || !keys) {
        free(all);
        free(keys);
        return tsr_error_set(TSR_ENOMEM, "comm: out of memory for the topology of %d ranks", size);
    }
    rc = local_key(spec, rec + 1, t->why, sizeof t->why);
    if (rc) {
        rec[0] = (char)-rc; /* TSR_* codes are small negatives */
        snprintf(rec + 1, KEY, "%s", tsr_last_error());
    }
    rc = MPI_Allgather(rec, 1 + KEY, MPI_CHAR, all, 1 + KEY, MPI_CHAR, comm);
    if (rc != MPI_SUCCESS) {
        rc = tsr_error_set(TSR_EMPI, "comm: MPI_Allgather of the ranks' switches failed");
        goto done;
    }
    for (int r = 0; r < size; r++) {
        const char *rr = all + (size_t)r * (1 + KEY);
        if (rr[0]) {
            rc = tsr_error_set(-(int)rr[0], "comm: runtime.topology = %s: rank %d: %.*s", spec ? spec : "auto", r,
                               KEY - 1, rr + 1);
            goto done;
        }
        memcpy(keys + (size_t)r * KEY, rr + 1, KEY);
        keys[(size_t)r * KEY + KEY - 1] = '\0';
    }
    int empty = -1, named = -1; /* no topology must be every rank's (auto reads each rank's environment) */
    for (int r = size - 1; r >= 0; r--)
        *(keys[(size_t)r * KEY] ? &named : &empty) = r;
    if (empty >= 0 && named >= 0) {
        rc = tsr_error_set(TSR_EINVAL,
                           "comm: runtime.topology = %s: rank %d has no switch and rank %d has '%.64s'; expected "
                           "every rank's SLURM_TOPOLOGY_ADDR to name one, or none to",
                           spec ? spec : "auto", empty, named, keys + (size_t)named * KEY);
        goto done;
    }
    if (named < 0)
        goto done;
    rc = group(t, keys, size, rank);
done:
    free(all);
    free(keys);
    return rc;
}
