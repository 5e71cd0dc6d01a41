/* SPDX-License-Identifier: BSD-3-Clause */
/* Counters and resource use in /status ("perf") and /metrics: per rank,
 * as training publishes them (tsr_serve_publish_perf), or, for a
 * coordinator without training (tessera serve), its own process sampled
 * when asked. Prometheus' process_* names where they fit. */
#include "serve/perf.h"
#include "tessera/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int serve_perf_create(serve_perf_t **out)
{
    serve_perf_t *p = calloc(1, sizeof *p);
    if (!p)
        return tsr_error_set(TSR_ENOMEM, "serve: out of memory");
    pthread_mutex_init(&p->mu, NULL);
    *out = p;
    return TSR_OK;
}

static void free_ranks(serve_perf_t *p)
{
    free(p->hosts);
    free(p->tot);
    free(p->res);
    free(p->cnt);
    p->hosts = NULL;
    p->tot = NULL;
    p->res = NULL;
    p->cnt = NULL;
    p->world = 0;
}

void serve_perf_destroy(serve_perf_t *p)
{
    if (!p)
        return;
    free_ranks(p);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Host names go into label values and JSON: keep them plain. */
static void copy_host(char *dst, const char *src)
{
    snprintf(dst, HOST_LEN, "%s", src ? src : "");
    for (char *c = dst; *c; c++)
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = '_';
}

int tsr_serve_publish_perf(tsr_serve_t *s, const tsr_serve_perf_t *in)
{
    int n = in->world_size > 0 && in->world_size <= (1 << 20) ? in->world_size : 0;
    int ne = in->nevents > 0 && in->nevents <= TSR_PERF_MAX_EVENTS ? in->nevents : 0;
    if (!s || !n || !in->totals || !in->resources || !in->counters)
        return tsr_error_set(TSR_EINVAL, "tsr_serve_publish_perf: expected world_size, totals, resources, counters");
    char(*hosts)[HOST_LEN] = calloc((size_t)n, HOST_LEN);
    tsr_perf_totals_t *tot = malloc((size_t)n * sizeof *tot);
    tsr_resource_t *res = malloc((size_t)n * sizeof *res);
    double *cnt = malloc((size_t)n * TSR_COUNTER_COUNT * sizeof *cnt);
    if (!hosts || !tot || !res || !cnt) {
        free(hosts);
        free(tot);
        free(res);
        free(cnt);
        return tsr_error_set(TSR_ENOMEM, "serve: out of memory for %d ranks' counters", n);
    }
    for (int r = 0; r < n; r++)
        copy_host(hosts[r], in->hosts ? in->hosts[r] : NULL);
    memcpy(tot, in->totals, (size_t)n * sizeof *tot);
    memcpy(res, in->resources, (size_t)n * sizeof *res);
    memcpy(cnt, in->counters, (size_t)n * TSR_COUNTER_COUNT * sizeof *cnt);
    serve_perf_t *p = s->perf;
    pthread_mutex_lock(&p->mu);
    free_ranks(p);
    p->world = n;
    p->hosts = hosts;
    p->tot = tot;
    p->res = res;
    p->cnt = cnt;
    p->nevents = ne;
    for (int i = 0; i < ne; i++) {
        snprintf(p->events[i], sizeof p->events[i], "%s", in->events && in->events[i] ? in->events[i] : "?");
        p->evp[i] = p->events[i];
    }
    snprintf(p->note, sizeof p->note, "%s", in->note ? in->note : "");
    pthread_mutex_unlock(&p->mu);
    return TSR_OK;
}

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *resources_json(const tsr_resource_t *r)
{
    json_t *o =
        json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "cpu_user_s", num(r->cpu_user_s), "cpu_system_s",
                  num(r->cpu_system_s), "rss_bytes", num(r->rss_bytes), "peak_rss_bytes", num(r->peak_rss_bytes),
                  "virtual_bytes", num(r->virtual_bytes), "read_bytes", num(r->read_bytes), "write_bytes",
                  num(r->write_bytes), "context_switches_voluntary", num(r->ctx_voluntary),
                  "context_switches_involuntary", num(r->ctx_involuntary), "children_cpu_s", num(r->children_cpu_s));
    json_object_set_new(o, "gpu",
                        r->gpu_found > 0
                            ? json_pack("{s:o,s:o,s:o,s:o}", "utilization", num(r->gpu_util_ratio), "memory_used_bytes",
                                        num(r->gpu_mem_used_bytes), "memory_total_bytes", num(r->gpu_mem_total_bytes),
                                        "power_w", num(r->gpu_power_w))
                            : json_null());
    return o;
}

static json_t *view_json(const serve_perf_t *p, const view_t *v)
{
    json_t *o = json_object(), *c = json_object();
    if (v->rank >= 0)
        json_object_set_new(o, "rank", json_integer(v->rank));
    json_object_set_new(o, "host", json_string(v->host));
    for (int k = 0; k < TSR_COUNTER_COUNT; k++)
        json_object_set_new(c, tsr_counter_name((tsr_counter_t)k), json_integer((json_int_t)v->cnt[k]));
    json_object_set_new(o, "counters", c);
    json_object_set_new(o, "resources", resources_json(v->res));
    if (!v->tot)
        return o;
    json_t *ph = json_object();
    for (int k = 0; k < TSR_PHASE_COUNT; k++) {
        json_t *e = json_object();
        for (int i = 0; i < p->nevents; i++)
            json_object_set_new(e, p->events[i], json_real(v->tot->counts[k][i]));
        json_object_set_new(ph, tsr_phase_name((tsr_phase_t)k),
                            json_pack("{s:o,s:o,s:o}", "seconds", num(v->tot->seconds[k]), "entries",
                                      num(v->tot->entries[k]), "events", e));
    }
    json_object_set_new(o, "phases", ph);
    tsr_perf_derived_t d;
    tsr_perf_derive(p->evp, p->nevents, v->tot, -1, &d);
    double steps = v->cnt[TSR_COUNTER_STEPS];
    json_object_set_new(o, "ipc", num(d.ipc));
    json_object_set_new(o, "gflops", num(d.gflops));
    json_object_set_new(o, "memory_bytes_per_step", num(steps > 0 ? d.mem_bytes / steps : NAN));
    return o;
}

/* The process's own figures, for a coordinator nobody publishes to. */
static void sample_self(char *host, tsr_resource_t *res, double *cnt)
{
    char h[256] = "";
    gethostname(h, sizeof h - 1);
    copy_host(host, h);
    tsr_resource_sample(NULL, res);
    for (int k = 0; k < TSR_COUNTER_COUNT; k++)
        cnt[k] = (double)tsr_counter_get((tsr_counter_t)k);
}

void serve_perf_views(tsr_serve_t *s, serve_perf_fn *fn, void *arg)
{
    serve_perf_t *p = s->perf;
    pthread_mutex_lock(&p->mu);
    view_t *v = p->world ? malloc((size_t)p->world * sizeof *v) : NULL;
    if (p->world && v) {
        for (int r = 0; r < p->world; r++)
            v[r] = (view_t){r, p->hosts[r], &p->tot[r], &p->res[r], p->cnt + (size_t)r * TSR_COUNTER_COUNT};
        fn(p, v, p->world, arg);
    } else if (!p->world) {
        char host[HOST_LEN];
        tsr_resource_t res;
        double cnt[TSR_COUNTER_COUNT];
        sample_self(host, &res, cnt);
        view_t self = {-1, host, NULL, &res, cnt};
        fn(p, &self, 1, arg);
    }
    pthread_mutex_unlock(&p->mu);
    free(v);
}

static void to_json(const serve_perf_t *p, const view_t *v, int n, void *arg)
{
    json_t *o = arg;
    if (v[0].rank < 0) {
        json_object_set_new(o, "process", view_json(p, v));
        return;
    }
    json_t *ev = json_array(), *ranks = json_array();
    for (int i = 0; i < p->nevents; i++)
        json_array_append_new(ev, json_string(p->events[i]));
    json_object_set_new(o, "events", ev);
    json_object_set_new(o, "note", p->note[0] ? json_string(p->note) : json_null());
    for (int r = 0; r < n; r++)
        json_array_append_new(ranks, view_json(p, &v[r]));
    json_object_set_new(o, "ranks", ranks);
}

json_t *serve_perf_json(tsr_serve_t *s)
{
    json_t *o = json_object();
    serve_perf_views(s, to_json, o);
    return o;
}
