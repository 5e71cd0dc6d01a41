/* SPDX-License-Identifier: BSD-3-Clause */
/* One trial's configuration: the base, the sweep's values, and the keys the
 * sweep owns (each trial writes under DIR/trials/<t>/ and resumes from its
 * own checkpoints there). */
#include "sweep/internal.h"
#include "tessera/error.h"

#include <stdio.h>
#include <string.h>

static const char *const reserved[] = {
    "train.output", "checkpoint.dir", "checkpoint.resume", "checkpoint.final", "train.register", "serve.enabled", NULL};

int sweep_key_reserved(const char *key)
{
    for (int i = 0; reserved[i]; i++)
        if (strcmp(key, reserved[i]) == 0)
            return 1;
    return 0;
}

int sweep_trial_dir(const tsr_sweep_options_t *o, long t, char *dir, size_t len)
{
    int n = snprintf(dir, len, "%s/trials/%ld", o->dir, t);
    if (n < 0 || (size_t)n >= len)
        return tsr_error_set(TSR_EINVAL, "sweep: the directory %s is too long a path", o->dir);
    return TSR_OK;
}

static int set(tsr_config_t *cfg, const char *fmt, const char *a, const char *b)
{
    char kv[4400];
    int n = snprintf(kv, sizeof kv, fmt, a, b);
    if (n < 0 || (size_t)n >= sizeof kv)
        return tsr_error_set(TSR_EINVAL, "sweep: '%s' is too long", a);
    return tsr_config_set(cfg, kv);
}

int sweep_trial_config(const tsr_sweep_plan_t *p, const tsr_sweep_options_t *o, long t, tsr_config_t **out)
{
    tsr_config_t *cfg = NULL;
    char dir[4096];
    int rc = tsr_config_create(&cfg);
    if (!rc)
        rc = tsr_config_load(cfg, o->config);
    for (int i = 0; !rc && i < o->nsets; i++)
        rc = tsr_config_set(cfg, o->sets[i]);
    for (int k = 0; !rc && k < p->nkeys; k++)
        if ((rc = set(cfg, "%s=%s", p->keys[k], tsr_sweep_plan_value(p, t, k))))
            tsr_error_prefix(rc, "sweep: trial %ld: ", t);
    if (!rc)
        rc = sweep_trial_dir(o, t, dir, sizeof dir);
    if (!rc)
        rc = set(cfg, "train.output=%s/%s", dir, "model.h5");
    if (!rc)
        rc = set(cfg, "checkpoint.dir=%s/%s", dir, "ckpt");
    static const char *const fixed[] = {"checkpoint.resume=auto", "checkpoint.final=true", "train.register=false",
                                        "serve.enabled=false", NULL};
    for (int i = 0; !rc && fixed[i]; i++)
        rc = tsr_config_set(cfg, fixed[i]);
    if (rc) {
        tsr_config_destroy(cfg);
        return rc;
    }
    *out = cfg;
    return TSR_OK;
}
