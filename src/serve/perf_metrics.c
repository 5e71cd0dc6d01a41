/* SPDX-License-Identifier: BSD-3-Clause */
/* /metrics: per-rank resource use (Prometheus' process_* names where they
 * fit, rank and host labels; a coordinator without training reports its
 * own process with a host label), phase seconds, PAPI events per phase,
 * derived figures and tessera's own counters (tessera_sde_<name>_total, the
 * events PAPI reads as sde:::tessera::<name>). */
#include "serve/perf.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct out {
    serve_buf_t *b;
} out_t;

static void labels(const view_t *v, const char *extra, char *buf, size_t len)
{
    if (v->rank >= 0)
        snprintf(buf, len, "{rank=\"%d\",host=\"%s\"%s%s}", v->rank, v->host, *extra ? "," : "", extra);
    else
        snprintf(buf, len, "{host=\"%s\"%s%s}", v->host, *extra ? "," : "", extra);
}

static void head(serve_buf_t *b, const char *name, const char *type, const char *help)
{
    serve_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One family over every view: value k of each (NaN values are left out). */
typedef double getter_t(const view_t *v, int k);

static void family(serve_buf_t *b, const view_t *v, int n, const char *name, const char *type, const char *help,
                   getter_t *get, const char *label, const char *const *subs, int nsub)
{
    int any = 0;
    for (int r = 0; r < n && !any; r++)
        for (int k = 0; k < (nsub ? nsub : 1); k++)
            any |= !isnan(get(&v[r], k));
    if (!any)
        return;
    head(b, name, type, help);
    for (int r = 0; r < n; r++)
        for (int k = 0; k < (nsub ? nsub : 1); k++) {
            double x = get(&v[r], k);
            if (isnan(x))
                continue;
            char extra[160] = "", lab[320];
            if (nsub)
                snprintf(extra, sizeof extra, "%s=\"%s\"", label, subs[k]);
            labels(&v[r], extra, lab, sizeof lab);
            serve_metric_value(b, name, lab, x);
        }
}

static double cpu_total(const view_t *v, int k) { return v->res->cpu_user_s + v->res->cpu_system_s; }
static double cpu_mode(const view_t *v, int k) { return k ? v->res->cpu_system_s : v->res->cpu_user_s; }
static double rss(const view_t *v, int k) { return v->res->rss_bytes; }
static double vsz(const view_t *v, int k) { return v->res->virtual_bytes; }
static double peak(const view_t *v, int k) { return v->res->peak_rss_bytes; }
static double io(const view_t *v, int k) { return k ? v->res->write_bytes : v->res->read_bytes; }
static double csw(const view_t *v, int k) { return k ? v->res->ctx_involuntary : v->res->ctx_voluntary; }
static double child(const view_t *v, int k) { return v->res->children_cpu_s; }
static double gpu(const view_t *v, int k)
{
    const tsr_resource_t *r = v->res;
    if (r->gpu_found <= 0)
        return NAN;
    double x[4] = {r->gpu_util_ratio, r->gpu_mem_used_bytes, r->gpu_mem_total_bytes, r->gpu_power_w};
    return x[k];
}
static double util(const view_t *v, int k) { return gpu(v, 0); }
static double gmem(const view_t *v, int k) { return gpu(v, 1); }
static double gtot(const view_t *v, int k) { return gpu(v, 2); }
static double gpow(const view_t *v, int k) { return gpu(v, 3); }
static double phase_s(const view_t *v, int k) { return v->tot ? v->tot->seconds[k] : NAN; }
static double counter(const view_t *v, int k) { return v->cnt[k]; }

static const char *const modes[2] = {"user", "system"}, *const dirs[2] = {"read", "write"};
static const char *const kinds[2] = {"voluntary", "involuntary"};

static void resources(serve_buf_t *b, const view_t *v, int n)
{
    family(b, v, n, "process_cpu_seconds_total", "counter", "User and system CPU time of the process.", cpu_total, NULL,
           NULL, 0);
    family(b, v, n, "process_resident_memory_bytes", "gauge", "Resident memory of the process.", rss, NULL, NULL, 0);
    family(b, v, n, "process_virtual_memory_bytes", "gauge", "Virtual memory of the process.", vsz, NULL, NULL, 0);
    family(b, v, n, "tessera_process_peak_resident_memory_bytes", "gauge", "Peak resident memory of the process.", peak,
           NULL, NULL, 0);
    family(b, v, n, "tessera_process_cpu_mode_seconds_total", "counter", "CPU time of the process by mode.", cpu_mode,
           "mode", modes, 2);
    family(b, v, n, "tessera_process_io_bytes_total", "counter", "Bytes the process read from and wrote to storage.",
           io, "direction", dirs, 2);
    family(b, v, n, "tessera_process_context_switches_total", "counter", "Context switches of the process.", csw,
           "kind", kinds, 2);
    family(b, v, n, "tessera_process_children_cpu_seconds_total", "counter",
           "CPU time of the process's reaped children (shell tasks).", child, NULL, NULL, 0);
    family(b, v, n, "tessera_gpu_utilization_ratio", "gauge", "GPU busy share (NVML).", util, NULL, NULL, 0);
    family(b, v, n, "tessera_gpu_memory_used_bytes", "gauge", "GPU memory in use (NVML).", gmem, NULL, NULL, 0);
    family(b, v, n, "tessera_gpu_memory_total_bytes", "gauge", "GPU memory (NVML).", gtot, NULL, NULL, 0);
    family(b, v, n, "tessera_gpu_power_watts", "gauge", "GPU power draw (NVML).", gpow, NULL, NULL, 0);
}

static void counters(serve_buf_t *b, const view_t *v, int n)
{
    for (int k = 0; k < TSR_COUNTER_COUNT; k++) {
        char name[96], help[200];
        /* Prometheus wants seconds: reduce_wait_ns -> tessera_sde_reduce_wait_seconds_total. */
        const char *cn = tsr_counter_name((tsr_counter_t)k);
        size_t len = strlen(cn);
        int ns = len > 3 && strcmp(cn + len - 3, "_ns") == 0;
        snprintf(name, sizeof name, "tessera_sde_%.*s%s_total", (int)(ns ? len - 3 : len), cn, ns ? "_seconds" : "");
        snprintf(help, sizeof help, "PAPI sde:::tessera::%s: %s.", tsr_counter_name((tsr_counter_t)k),
                 tsr_counter_help((tsr_counter_t)k));
        head(b, name, "counter", help);
        for (int r = 0; r < n; r++) {
            char lab[160];
            labels(&v[r], "", lab, sizeof lab);
            serve_metric_value(b, name, lab, counter(&v[r], k) * (ns ? 1e-9 : 1));
        }
    }
}

/* Phase seconds, events per phase, and the derived figures. */
static void phases(serve_buf_t *b, const serve_perf_t *p, const view_t *v, int n)
{
    const char *names[TSR_PHASE_COUNT];
    for (int k = 0; k < TSR_PHASE_COUNT; k++)
        names[k] = tsr_phase_name((tsr_phase_t)k);
    family(b, v, n, "tessera_phase_seconds_total", "counter", "Seconds each rank spent in each phase of the step.",
           phase_s, "phase", names, TSR_PHASE_COUNT);
    if (!p->nevents)
        return;
    head(b, "tessera_papi_events_total", "counter", "PAPI event counts per rank and phase.");
    for (int r = 0; r < n; r++)
        for (int k = 0; k < TSR_PHASE_COUNT; k++)
            for (int i = 0; i < p->nevents; i++) {
                char extra[200], lab[400];
                snprintf(extra, sizeof extra, "phase=\"%s\",event=\"%s\"", names[k], p->events[i]);
                labels(&v[r], extra, lab, sizeof lab);
                serve_metric_value(b, "tessera_papi_events_total", lab, v[r].tot->counts[k][i]);
            }
    static const char *const dn[3] = {"tessera_rank_ipc", "tessera_rank_gflops", "tessera_rank_memory_bytes_per_step"};
    static const char *const dh[3] = {"Instructions per cycle (PAPI_TOT_INS / PAPI_TOT_CYC).",
                                      "GFLOP/s (PAPI_FP_OPS, PAPI_SP_OPS or PAPI_DP_OPS).",
                                      "Last-level cache misses x 64 bytes per step."};
    for (int q = 0; q < 3; q++) {
        int shown = 0;
        for (int r = 0; r < n; r++) {
            tsr_perf_derived_t d;
            tsr_perf_derive(p->evp, p->nevents, v[r].tot, -1, &d);
            double steps = v[r].cnt[TSR_COUNTER_STEPS];
            double x = q == 0 ? d.ipc : q == 1 ? d.gflops : steps > 0 ? d.mem_bytes / steps : NAN;
            if (isnan(x))
                continue;
            if (!shown++)
                head(b, dn[q], "gauge", dh[q]);
            char lab[160];
            labels(&v[r], "", lab, sizeof lab);
            serve_metric_value(b, dn[q], lab, x);
        }
    }
}

static void to_text(const serve_perf_t *p, const view_t *v, int n, void *arg)
{
    serve_buf_t *b = arg;
    resources(b, v, n);
    counters(b, v, n);
    if (v[0].tot)
        phases(b, p, v, n);
}

void serve_perf_metrics(tsr_serve_t *s, serve_buf_t *b) { serve_perf_views(s, to_text, b); }
