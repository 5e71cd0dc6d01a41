/* SPDX-License-Identifier: BSD-3-Clause */
/* GET /metrics (Prometheus text format 0.0.4) and the /cache routes. */
#include "serve/internal.h"

#include <stdlib.h>
#include <string.h>

const double serve_lat_bounds[SERVE_LAT_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                    0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};
const double serve_batch_bounds[SERVE_BATCH_BUCKETS] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 1024};

static void header(serve_buf_t *b, const char *name, const char *type, const char *help)
{
    serve_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(serve_buf_t *b, const char *name, const double *bounds, int nb, const uint64_t *counts,
                      double sum)
{
    uint64_t cum = 0;
    for (int i = 0; i < nb; i++) {
        cum += counts[i];
        serve_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)cum);
    }
    cum += counts[nb];
    serve_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n", name, (unsigned long long)cum,
                     name, sum, name, (unsigned long long)cum);
}

void serve_route_metrics(serve_req_t *r)
{
    tsr_serve_t *s = r->s;
    serve_buf_t b = {.cap = 16384};
    b.p = malloc(b.cap);
    b.oom = !b.p;
    serve_buf_printf(&b,
                     "# HELP tessera_build_info The coordinator's version.\n# TYPE tessera_build_info gauge\n"
                     "tessera_build_info{version=\"%s\"} 1\n",
                     TSR_VERSION);
    header(&b, "tessera_uptime_seconds", "gauge", "Seconds since the coordinator started.");
    serve_buf_printf(&b, "tessera_uptime_seconds %.3f\n", tsr_time_now() - s->t_start);

    header(&b, "tessera_http_requests_total", "counter", "HTTP requests answered, by route and status code.");
    for (int rt = 0; rt < RT_COUNT; rt++)
        for (int c = 0; c < SERVE_CODES; c++) {
            uint64_t n = atomic_load_explicit(&s->http[rt][c], memory_order_relaxed);
            if (!n)
                continue;
            char code[16];
            if (serve_codes[c])
                snprintf(code, sizeof code, "%d", serve_codes[c]);
            else
                snprintf(code, sizeof code, "other");
            serve_buf_printf(&b, "tessera_http_requests_total{route=\"%s\",code=\"%s\"} %llu\n", serve_route_names[rt],
                             code, (unsigned long long)n);
        }

    uint64_t lat[SERVE_LAT_BUCKETS + 1];
    for (int i = 0; i <= SERVE_LAT_BUCKETS; i++)
        lat[i] = atomic_load(&s->lat_bucket[i]);
    header(&b, "tessera_predict_latency_seconds", "histogram",
           "Time from request headers to a 200 answer on /predict.");
    histogram(&b, "tessera_predict_latency_seconds", serve_lat_bounds, SERVE_LAT_BUCKETS, lat,
              (double)atomic_load(&s->lat_sum_ns) * 1e-9);

    uint64_t batches, rows, bk[SERVE_BATCH_BUCKETS + 1];
    size_t queued;
    serve_batcher_stats(s->batcher, &batches, &rows, &queued, bk);
    header(&b, "tessera_predict_rows_total", "counter", "Input rows answered by /predict.");
    serve_buf_printf(&b, "tessera_predict_rows_total %llu\n", (unsigned long long)atomic_load(&s->pred_rows));
    header(&b, "tessera_predict_cached_rows_total", "counter", "Rows answered from the prediction cache.");
    serve_buf_printf(&b, "tessera_predict_cached_rows_total %llu\n",
                     (unsigned long long)atomic_load(&s->pred_cached_rows));
    header(&b, "tessera_predict_batch_rows", "histogram", "Rows per model call made by the dynamic batcher.");
    histogram(&b, "tessera_predict_batch_rows", serve_batch_bounds, SERVE_BATCH_BUCKETS, bk, (double)rows);
    header(&b, "tessera_predict_queue_rows", "gauge", "Rows waiting for the batcher.");
    serve_buf_printf(&b, "tessera_predict_queue_rows %zu\n", queued);
    header(&b, "tessera_model_version", "gauge", "Weights published to the coordinator so far (0: none).");
    serve_buf_printf(&b, "tessera_model_version %llu\n", (unsigned long long)atomic_load(&s->version));

    if (s->cache) {
        tsr_cache_stats_t cs;
        tsr_cache_stats(s->cache, &cs);
        static const char *const cn[5] = {"hits", "misses", "evictions", "expirations", "inserts"};
        static const char *const ch[5] = {"Prediction cache hits (rows).", "Prediction cache misses (rows).",
                                          "Entries evicted to stay under the byte budget.",
                                          "Entries dropped after their TTL.", "Entries stored."};
        uint64_t cv[5] = {cs.hits, cs.misses, cs.evictions, cs.expirations, cs.inserts};
        for (int i = 0; i < 5; i++) {
            char name[64];
            snprintf(name, sizeof name, "tessera_cache_%s_total", cn[i]);
            header(&b, name, "counter", ch[i]);
            serve_buf_printf(&b, "%s %llu\n", name, (unsigned long long)cv[i]);
        }
        header(&b, "tessera_cache_entries", "gauge", "Entries in the prediction cache.");
        serve_buf_printf(&b, "tessera_cache_entries %zu\n", cs.entries);
        header(&b, "tessera_cache_bytes", "gauge", "Bytes the prediction cache holds.");
        serve_buf_printf(&b, "tessera_cache_bytes %zu\n", cs.bytes);
        header(&b, "tessera_cache_max_bytes", "gauge", "The prediction cache's byte budget.");
        serve_buf_printf(&b, "tessera_cache_max_bytes %zu\n", cs.max_bytes);
    }
    serve_status_metrics(s->status, &b);
    serve_tasks_metrics(s, &b);
    serve_perf_metrics(s, &b);
    if (b.oom) {
        free(b.p);
        serve_error(r, 500, "out of memory for the metrics");
        return;
    }
    serve_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
}

void serve_route_cache(serve_req_t *r)
{
    tsr_serve_t *s = r->s;
    tsr_cache_stats_t cs = {0};
    if (s->cache && r->method == M_DELETE)
        tsr_cache_clear(s->cache);
    if (s->cache)
        tsr_cache_stats(s->cache, &cs);
    serve_json(r, 200,
               json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f}", "enabled", s->cache != NULL, "hits",
                         (json_int_t)cs.hits, "misses", (json_int_t)cs.misses, "evictions", (json_int_t)cs.evictions,
                         "expirations", (json_int_t)cs.expirations, "inserts", (json_int_t)cs.inserts, "entries",
                         (json_int_t)cs.entries, "bytes", (json_int_t)cs.bytes, "max_bytes", (json_int_t)cs.max_bytes,
                         "ttl_s", s->cfg.cache_ttl_s));
}
