/* SPDX-License-Identifier: BSD-3-Clause */
/* The process's resource use: getrusage, /proc/self/statm and io, and the
 * GPU through NVML, opened with dlopen on first use so that builds and
 * runs without a driver are unaffected (absent: not reported, one debug
 * line). */
#include "tessera/error.h"
#include "tessera/log.h"
#include "tessera/perf.h"

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The few NVML calls used, with NVML's own (stable, C ABI) types. */
typedef void *nvml_dev_t;
typedef struct {
    unsigned int gpu, memory;
} nvml_util_t;
typedef struct {
    unsigned long long total, free, used;
} nvml_mem_t;

static struct {
    int (*init)(void);
    int (*by_bus)(const char *, nvml_dev_t *);
    int (*util)(nvml_dev_t, nvml_util_t *);
    int (*mem)(nvml_dev_t, nvml_mem_t *);
    int (*power)(nvml_dev_t, unsigned int *);
    int ok;
} nvml;
static pthread_once_t nvml_once = PTHREAD_ONCE_INIT;

static void nvml_open(void)
{
    void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        tsr_log(TSR_LOG_DEBUG, "GPU resource use not reported: %s", dlerror());
        return;
    }
    *(void **)&nvml.init = dlsym(h, "nvmlInit_v2");
    *(void **)&nvml.by_bus = dlsym(h, "nvmlDeviceGetHandleByPciBusId_v2");
    *(void **)&nvml.util = dlsym(h, "nvmlDeviceGetUtilizationRates");
    *(void **)&nvml.mem = dlsym(h, "nvmlDeviceGetMemoryInfo");
    *(void **)&nvml.power = dlsym(h, "nvmlDeviceGetPowerUsage");
    if (!nvml.init || !nvml.by_bus || !nvml.util || !nvml.mem || !nvml.power || nvml.init() != 0) {
        tsr_log(TSR_LOG_DEBUG, "GPU resource use not reported: libnvidia-ml.so.1 lacks a function or did not start");
        return;
    }
    nvml.ok = 1;
}

static void sample_gpu(const char *busid, tsr_resource_t *r)
{
    r->gpu_found = 0;
    r->gpu_util_ratio = r->gpu_mem_used_bytes = r->gpu_mem_total_bytes = r->gpu_power_w = NAN;
    if (!busid || !*busid)
        return;
    pthread_once(&nvml_once, nvml_open);
    nvml_dev_t d;
    if (!nvml.ok || nvml.by_bus(busid, &d) != 0)
        return;
    nvml_util_t u;
    nvml_mem_t m;
    unsigned int mw;
    r->gpu_found = 1;
    if (nvml.util(d, &u) == 0)
        r->gpu_util_ratio = u.gpu / 100.0;
    if (nvml.mem(d, &m) == 0) {
        r->gpu_mem_used_bytes = (double)m.used;
        r->gpu_mem_total_bytes = (double)m.total;
    }
    if (nvml.power(d, &mw) == 0)
        r->gpu_power_w = mw / 1000.0;
}

/* /proc/self/io's read_bytes and write_bytes (storage traffic). */
static void sample_io(tsr_resource_t *r)
{
    r->read_bytes = r->write_bytes = NAN;
    FILE *f = fopen("/proc/self/io", "r");
    if (!f)
        return;
    char line[128];
    unsigned long long v;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "read_bytes: %llu", &v) == 1)
            r->read_bytes = (double)v;
        else if (sscanf(line, "write_bytes: %llu", &v) == 1)
            r->write_bytes = (double)v;
    }
    fclose(f);
}

static double tv(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec * 1e-6; }

int tsr_resource_sample(const char *gpu_pci_busid, tsr_resource_t *r)
{
    struct rusage ru, ch;
    memset(r, 0, sizeof *r);
    if (getrusage(RUSAGE_SELF, &ru) || getrusage(RUSAGE_CHILDREN, &ch))
        return tsr_error_set(TSR_ESYS, "getrusage failed");
    r->cpu_user_s = tv(ru.ru_utime);
    r->cpu_system_s = tv(ru.ru_stime);
    r->peak_rss_bytes = (double)ru.ru_maxrss * 1024;
    r->ctx_voluntary = (double)ru.ru_nvcsw;
    r->ctx_involuntary = (double)ru.ru_nivcsw;
    r->children_cpu_s = tv(ch.ru_utime) + tv(ch.ru_stime);
    r->rss_bytes = r->virtual_bytes = NAN;
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size, res;
    if (f && fscanf(f, "%llu %llu", &size, &res) == 2) {
        double page = (double)sysconf(_SC_PAGESIZE);
        r->virtual_bytes = (double)size * page;
        r->rss_bytes = (double)res * page;
        if (r->rss_bytes > r->peak_rss_bytes) /* ru_maxrss lags statm by a page or so */
            r->peak_rss_bytes = r->rss_bytes;
    }
    if (f)
        fclose(f);
    sample_io(r);
    sample_gpu(gpu_pci_busid, r);
    return TSR_OK;
}

void tsr_bytes_format(double b, char *out, size_t len)
{
    static const char *const u[] = {"B", "kB", "MB", "GB", "TB"};
    int k = 0;
    for (; fabs(b) >= 1000 && k < 4; k++)
        b /= 1000;
    if (isnan(b))
        snprintf(out, len, "?");
    else
        snprintf(out, len, k ? "%.1f %s" : "%.0f %s", b, u[k]);
}

void tsr_resource_format(const tsr_resource_t *x, char *out, size_t len)
{
    char rss[32], peak[32], rd[32], wr[32], gpu[160] = "", kids[64] = "";
    tsr_bytes_format(x->rss_bytes, rss, sizeof rss);
    tsr_bytes_format(x->peak_rss_bytes, peak, sizeof peak);
    tsr_bytes_format(x->read_bytes, rd, sizeof rd);
    tsr_bytes_format(x->write_bytes, wr, sizeof wr);
    if (x->children_cpu_s > 0)
        snprintf(kids, sizeof kids, ", children %.2f s", x->children_cpu_s);
    if (x->gpu_found > 0) {
        char used[32], tot[32];
        tsr_bytes_format(x->gpu_mem_used_bytes, used, sizeof used);
        tsr_bytes_format(x->gpu_mem_total_bytes, tot, sizeof tot);
        snprintf(gpu, sizeof gpu, "; GPU %.0f%% busy, %s of %s, %.0f W", 100 * x->gpu_util_ratio, used, tot,
                 x->gpu_power_w);
    }
    snprintf(out, len,
             "CPU %.2f s user + %.2f s system%s, RSS %s (peak %s), read %s, written %s, context switches %.0f "
             "voluntary + %.0f involuntary%s",
             x->cpu_user_s, x->cpu_system_s, kids, rss, peak, rd, wr, x->ctx_voluntary, x->ctx_involuntary, gpu);
}
