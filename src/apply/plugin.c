/* SPDX-License-Identifier: BSD-3-Clause */
/* User functions for `tessera apply`: a shared object loaded with dlopen,
 * ABI-checked (tessera/apply.h), its calls guarded as plugin layers are
 * (common/sigguard.h): a crash inside it (SIGSEGV, SIGBUS, SIGFPE, SIGILL)
 * becomes an error naming the plugin, the partition and the signal, so the
 * ranks stop together and no output is committed. */
#include "apply/internal.h"

#include "common/sigguard.h"
#include "tessera/error.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int apply_plugin_load(const char *path, size_t cols, apply_plugin_t *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "%s", path);
    char real[PATH_MAX];
    if (!realpath(path, real))
        return tsr_error_set(TSR_EINVAL, "apply: plugin %s: no such file", path);
    void *h = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return tsr_error_set(TSR_EINVAL, "apply: plugin %s: cannot load it: %s", path, dlerror());
    const int *abi = dlsym(h, "tessera_apply_abi");
    typedef const tsr_apply_plugin_t *(*entry_fn)(void);
    entry_fn entry = (entry_fn)dlsym(h, "tessera_apply_plugin");
    if (!abi || !entry) {
        dlclose(h);
        return tsr_error_set(TSR_EINVAL, "apply: %s is not a tessera apply plugin (it lacks %s)", path,
                             !abi ? "tessera_apply_abi" : "tessera_apply_plugin");
    }
    if (*abi != TSR_APPLY_ABI) {
        int v = *abi;
        dlclose(h);
        return tsr_error_set(TSR_EINVAL,
                             "apply: plugin %s was built for apply ABI version %d, this tessera has version %d; "
                             "rebuild it against this tessera's tessera/apply.h",
                             path, v, TSR_APPLY_ABI);
    }
    p->fn = entry();
    if (!p->fn || p->fn->abi != TSR_APPLY_ABI || !p->fn->setup)
        return tsr_error_set(TSR_EINVAL, "apply: plugin %s: tessera_apply_plugin() gave %s", path,
                             !p->fn          ? "no function table"
                             : !p->fn->setup ? "no setup"
                                             : "another ABI version");
    tsr_error_clear();
    if (p->fn->setup(cols, &p->out_cols, &p->partial_len) != 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", tsr_last_error());
        return tsr_error_set(TSR_EDATA, "apply: plugin %s refused the input of %zu columns%s%s", path, cols,
                             why[0] ? ": " : "", why);
    }
    if ((p->out_cols > 0) == (p->partial_len > 0))
        return tsr_error_set(TSR_EINVAL, "apply: plugin %s: setup must set exactly one of out_cols and partial_len",
                             path);
    if ((p->out_cols && !p->fn->map) || (p->partial_len && (!p->fn->partial || !p->fn->merge)))
        return tsr_error_set(TSR_EINVAL, "apply: plugin %s: %s", path,
                             p->out_cols ? "a row function needs map" : "a reduction needs partial and merge");
    return TSR_OK;
}

typedef struct call {
    const apply_plugin_t *p;
    const float *x;
    size_t rows, cols, first;
    float *out;
    double *partial, *a;
    const double *b;
    const char *what;
} call_t;

static int run(const call_t *c)
{
    if (c->out)
        return c->p->fn->map(c->x, c->rows, c->cols, c->out);
    if (c->partial)
        return c->p->fn->partial(c->x, c->rows, c->cols, c->first, c->partial);
    c->p->fn->merge(c->a, c->b, c->p->partial_len);
    return 0;
}

static int run_checked(void *arg)
{
    const call_t *c = arg;
    tsr_error_clear();
    if (run(c) == 0)
        return TSR_OK;
    char why[512];
    snprintf(why, sizeof why, "%s", tsr_last_error());
    return tsr_error_set(TSR_EDATA, "the apply plugin %s failed in %s%s%s", c->p->path, c->what, why[0] ? ": " : "",
                         why);
}

static int guarded(call_t *c, const char *what)
{
    c->what = what;
    int sig, rc = tsr_sigguard_run(run_checked, c, &sig);
    if (sig)
        rc = tsr_error_set(TSR_EINTERNAL, "the apply plugin %s crashed in %s (signal %d, %s); no output is written",
                           c->p->path, what, sig, strsignal(sig));
    return rc;
}

int apply_plugin_map(const apply_plugin_t *p, const float *x, size_t rows, size_t cols, float *out)
{
    call_t c = {.p = p, .x = x, .rows = rows, .cols = cols, .out = out};
    return guarded(&c, "map");
}

int apply_plugin_partial(const apply_plugin_t *p, const float *x, size_t rows, size_t cols, size_t first,
                         double *partial)
{
    memset(partial, 0, p->partial_len * sizeof *partial);
    call_t c = {.p = p, .x = x, .rows = rows, .cols = cols, .first = first, .partial = partial};
    return guarded(&c, "partial");
}

int apply_plugin_merge(const apply_plugin_t *p, double *a, const double *b)
{
    call_t c = {.p = p, .a = a, .b = b};
    return guarded(&c, "merge");
}
