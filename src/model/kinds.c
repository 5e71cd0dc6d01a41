/* SPDX-License-Identifier: BSD-3-Clause */
/* The table of layer kinds: the built-ins, then those plugins register
 * (dlopen, ABI-checked). Process-wide; plugins stay loaded until exit. */
#include "model/layers/layers.h"
#include "common/text.h"

#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_USER_KINDS 64
#define MAX_PLUGINS 16

static const tsr_layer_kind_t *const builtin[] = {
    &tsr_kind_dense, &tsr_kind_conv, &tsr_kind_maxpool, &tsr_kind_avgpool, &tsr_kind_gap,  &tsr_kind_flatten,
    &tsr_kind_bn,    &tsr_kind_ln,   &tsr_kind_dropout, &tsr_kind_embed,   &tsr_kind_res,  &tsr_kind_res_end,
    &tsr_kind_relu,  &tsr_kind_tanh, &tsr_kind_sigmoid, &tsr_kind_gelu,    &tsr_kind_silu,
};
enum { NBUILTIN = sizeof builtin / sizeof builtin[0] };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static const tsr_layer_kind_t *user[MAX_USER_KINDS];
static int nuser;
static char plugin_path[MAX_PLUGINS][PATH_MAX];
static int nplugins;

void layer_uniform(float *p, size_t n, double bound, tsr_rng_t *r)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((2.0 * tsr_rng_uniform(r) - 1.0) * bound);
}

const char *layer_shape_text(tsr_shape_t s, char *buf, size_t len)
{
    if (s.h == 1 && s.w == 1)
        snprintf(buf, len, "%d", s.c);
    else
        snprintf(buf, len, "%dx%dx%d", s.c, s.h, s.w);
    return buf;
}

const tsr_layer_kind_t *tsr_layer_find(const char *name)
{
    for (int i = 0; i < NBUILTIN; i++)
        if (strcmp(builtin[i]->name, name) == 0)
            return builtin[i];
    const tsr_layer_kind_t *k = NULL;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < nuser && !k; i++)
        if (strcmp(user[i]->name, name) == 0)
            k = user[i];
    pthread_mutex_unlock(&mu);
    return k;
}

/* The known kind nearest to name, for "did you mean". */
const char *layer_nearest(const char *name)
{
    const char *best = NULL;
    int bd = 1 << 30;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < NBUILTIN + nuser; i++) {
        const char *n = i < NBUILTIN ? builtin[i]->name : user[i - NBUILTIN]->name;
        if (strcmp(n, "res_end") == 0)
            continue;
        int d = tsr_text_distance(name, n);
        if (d < bd)
            bd = d, best = n;
    }
    pthread_mutex_unlock(&mu);
    return best;
}

int tsr_layer_register(const tsr_layer_kind_t *k)
{
    if (!k || !k->name || !k->name[0])
        return tsr_error_set(TSR_EINVAL, "layer kind without a name");
    if (k->abi != TSR_LAYER_ABI)
        return tsr_error_set(TSR_EINVAL, "layer kind %s: ABI version %d, this tessera has %d", k->name, k->abi,
                             TSR_LAYER_ABI);
    if (!k->shape || !k->forward || !k->backward)
        return tsr_error_set(TSR_EINVAL, "layer kind %s: shape, forward and backward are required", k->name);
    for (const char *c = k->name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_') || strlen(k->name) > 31)
            return tsr_error_set(TSR_EINVAL, "layer kind \"%s\": expected a name of up to 31 of a-z, 0-9 and _",
                                 k->name);
    if (tsr_layer_find(k->name))
        return tsr_error_set(TSR_EINVAL, "layer kind %s is already defined", k->name);
    pthread_mutex_lock(&mu);
    int rc = TSR_OK;
    if (nuser == MAX_USER_KINDS)
        rc = tsr_error_set(TSR_EINVAL, "layer kind %s: more than %d user kinds", k->name, MAX_USER_KINDS);
    else
        user[nuser++] = k;
    pthread_mutex_unlock(&mu);
    return rc;
}

int tsr_layer_is_builtin(const tsr_layer_kind_t *k)
{
    for (int i = 0; i < NBUILTIN; i++)
        if (builtin[i] == k)
            return 1;
    return 0;
}

int tsr_layer_load_plugin(const char *path)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return tsr_error_set(TSR_EINVAL, "plugin %s: no such file", path);
    pthread_mutex_lock(&mu);
    for (int i = 0; i < nplugins; i++)
        if (strcmp(plugin_path[i], real) == 0) {
            pthread_mutex_unlock(&mu);
            return TSR_OK;
        }
    pthread_mutex_unlock(&mu);
    void *h = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return tsr_error_set(TSR_EINVAL, "plugin %s: cannot load it: %s", path, dlerror());
    const int *abi = dlsym(h, "tessera_plugin_abi");
    typedef const tsr_layer_kind_t *const *(*kinds_fn)(int *count);
    kinds_fn kinds = (kinds_fn)dlsym(h, "tessera_plugin_kinds");
    if (!abi || !kinds) {
        dlclose(h);
        return tsr_error_set(TSR_EINVAL, "plugin %s is not a tessera layer plugin (it lacks %s)", path,
                             !abi ? "tessera_plugin_abi" : "tessera_plugin_kinds");
    }
    if (*abi != TSR_LAYER_ABI) {
        int v = *abi;
        dlclose(h);
        return tsr_error_set(TSR_EINVAL,
                             "plugin %s was built for layer ABI version %d, this tessera has "
                             "version %d; rebuild the plugin against this tessera's tessera/layer.h",
                             path, v, TSR_LAYER_ABI);
    }
    int n = 0;
    const tsr_layer_kind_t *const *list = kinds(&n);
    if (!list || n < 1) {
        dlclose(h);
        return tsr_error_set(TSR_EINVAL, "plugin %s registers no layer kinds", path);
    }
    for (int i = 0; i < n; i++) {
        int rc = tsr_layer_register(list[i]);
        if (rc)
            return tsr_error_prefix(rc, "plugin %s: ", path); /* kinds before it stay: h stays open */
    }
    pthread_mutex_lock(&mu);
    if (nplugins < MAX_PLUGINS)
        snprintf(plugin_path[nplugins++], PATH_MAX, "%s", real);
    pthread_mutex_unlock(&mu);
    return TSR_OK;
}

int tsr_layer_load_plugins(const char *list, const char *dir)
{
    char item[PATH_MAX], path[PATH_MAX];
    const char *p = list;
    while (p && *p) {
        size_t n = strcspn(p, ",");
        size_t a = 0;
        while (a < n && p[a] == ' ')
            a++;
        size_t b = n;
        while (b > a && p[b - 1] == ' ')
            b--;
        if (b > a) {
            if (b - a >= sizeof item)
                return tsr_error_set(TSR_EINVAL, "plugin: a path longer than %d bytes", PATH_MAX - 1);
            memcpy(item, p + a, b - a);
            item[b - a] = '\0';
            int len = item[0] != '/' && dir && dir[0] ? snprintf(path, sizeof path, "%s/%s", dir, item)
                                                      : snprintf(path, sizeof path, "%s", item);
            if (len < 0 || (size_t)len >= sizeof path)
                return tsr_error_set(TSR_EINVAL, "plugin %s: the path is too long", item);
            int rc = tsr_layer_load_plugin(path);
            if (rc)
                return rc;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return TSR_OK;
}

int tsr_shape_parse(const char *text, tsr_shape_t *s)
{
    long v[3] = {0, 0, 0};
    int n = 0;
    const char *p = text;
    while (n < 3) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p || x < 1 || x > (1L << 28))
            break;
        v[n++] = x;
        p = end;
        if (*p != 'x' && *p != 'X')
            break;
        p++;
    }
    if (n == 0 || *p)
        return tsr_error_set(TSR_EINVAL, "shape \"%s\": expected CxHxW, HxW or a length, e.g. 1x28x28", text);
    *s = n == 3   ? (tsr_shape_t){(int)v[0], (int)v[1], (int)v[2]}
         : n == 2 ? (tsr_shape_t){1, (int)v[0], (int)v[1]}
                  : (tsr_shape_t){(int)v[0], 1, 1};
    return TSR_OK;
}

const char *layer_kind_origin(const tsr_layer_kind_t *k)
{
    Dl_info info;
    if (tsr_layer_is_builtin(k))
        return "built-in";
    return dladdr((const void *)k, &info) && info.dli_fname ? info.dli_fname : "a plugin";
}
