/* SPDX-License-Identifier: BSD-3-Clause */
/* tessera trace merge: per-rank trace files into one, each input checked
 * to be a tessera trace (an object with traceEvents and otherData's
 * tessera_rank) before anything is written. */
#include "common/fileutil.h"
#include "tessera/error.h"
#include "tessera/trace.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The ranks an input holds: one (a rank's file) or a merged file's list. */
static int ranks_of(const char *path, json_t *other, json_int_t *rk, int max, int *n)
{
    json_t *one = json_object_get(other, "tessera_rank"), *many = json_object_get(other, "tessera_ranks");
    *n = 0;
    if (json_is_integer(one)) {
        rk[(*n)++] = json_integer_value(one);
    } else if (json_is_array(many)) {
        size_t i;
        json_t *v;
        json_array_foreach(many, i, v)
        {
            if (!json_is_integer(v) || *n >= max)
                return tsr_error_set(TSR_EDATA, "%s: otherData.tessera_ranks is not a list of ranks", path);
            rk[(*n)++] = json_integer_value(v);
        }
    }
    if (*n == 0)
        return tsr_error_set(TSR_EDATA, "%s: not a tessera trace (no otherData.tessera_rank)", path);
    return TSR_OK;
}

static int load(const char *path, json_t **out)
{
    json_error_t err;
    int rc = tsr_file_check_input(path, "a tessera trace file (JSON)");
    if (rc)
        return rc;
    json_t *j = json_load_file(path, 0, &err);
    if (!j)
        return tsr_error_set(TSR_EDATA, "%s: line %d: not JSON: %s", path, err.line, err.text);
    if (!json_is_object(j) || !json_is_array(json_object_get(j, "traceEvents")) ||
        !json_is_object(json_object_get(j, "otherData"))) {
        json_decref(j);
        return tsr_error_set(TSR_EDATA, "%s: not a tessera trace (expected an object with traceEvents and otherData)",
                             path);
    }
    *out = j;
    return TSR_OK;
}

int tsr_trace_merge(const char *const *inputs, int n, const char *output)
{
    enum { MAX_RANKS = 1 << 16 };
    if (n < 1)
        return tsr_error_set(TSR_EINVAL, "trace merge: no input files");
    int rc = tsr_file_check_output(output, inputs, n);
    if (rc)
        return rc;
    json_t *events = json_array(), *ranks = json_array(), *doc = NULL;
    json_int_t *seen = malloc(MAX_RANKS * sizeof *seen), rk[256];
    int nseen = 0;
    json_int_t dropped = 0;
    if (!events || !ranks || !seen) {
        rc = tsr_error_set(TSR_ENOMEM, "trace merge: out of memory");
        goto out;
    }
    for (int i = 0; i < n && !rc; i++) {
        json_t *j = NULL;
        int k = 0;
        if ((rc = load(inputs[i], &j)))
            break;
        json_t *other = json_object_get(j, "otherData");
        rc = ranks_of(inputs[i], other, rk, 256, &k);
        for (int a = 0; !rc && a < k; a++) {
            for (int b = 0; b < nseen; b++)
                if (seen[b] == rk[a])
                    rc = tsr_error_set(TSR_EDATA, "%s: rank %lld is already in an earlier input", inputs[i],
                                       (long long)rk[a]);
            if (!rc && nseen == MAX_RANKS)
                rc = tsr_error_set(TSR_EDATA, "%s: more than %d ranks", inputs[i], MAX_RANKS);
            if (!rc) {
                seen[nseen++] = rk[a];
                json_array_append_new(ranks, json_integer(rk[a]));
            }
        }
        json_t *d = json_object_get(other, "dropped");
        dropped += json_is_integer(d) ? json_integer_value(d) : 0;
        if (!rc && json_array_extend(events, json_object_get(j, "traceEvents")))
            rc = tsr_error_set(TSR_ENOMEM, "trace merge: out of memory");
        json_decref(j);
    }
    if (rc)
        goto out;
    doc = json_pack("{s:s,s:{s:O,s:I},s:O}", "displayTimeUnit", "ms", "otherData", "tessera_ranks", ranks, "dropped",
                    dropped, "traceEvents", events);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (!text) {
        rc = tsr_error_set(TSR_ENOMEM, "trace merge: out of memory");
        goto out;
    }
    rc = tsr_file_write_atomic(output, text, strlen(text));
    free(text);
out:
    json_decref(doc);
    json_decref(events);
    json_decref(ranks);
    free(seen);
    return rc;
}
