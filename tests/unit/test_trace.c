/* SPDX-License-Identifier: BSD-3-Clause */
/* The timeline's rings (wrap-around drops the oldest and counts them,
 * threads get rings of their own, an unmatched end is left out), per-rank
 * file names, merge's checks, and the bottleneck report's figures and
 * suggestions; files in $TSR_TEST_TMP/trace, read back with jansson. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/fileutil.h"
#include "tessera/error.h"
#include "tessera/trace.h"

static char dir[512];

static const char *at(const char *name)
{
    static char buf[4][1024];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("TSR_TEST_TMP");
    snprintf(dir, sizeof dir, "%s/trace", base ? base : "/tmp");
    return tsr_mkdir_p(dir) ? -1 : 0;
}

static json_t *events_of(const char *path)
{
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    assert_non_null(j);
    return j;
}

/* B/E events of tid in the file, in order, as a string of kinds' first letters. */
static int count_ph(json_t *j, const char *ph, int tid)
{
    json_t *evs = json_object_get(j, "traceEvents"), *e;
    size_t i;
    int n = 0;
    json_array_foreach(evs, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "ph")), ph) == 0 &&
            (tid < 0 || json_integer_value(json_object_get(e, "tid")) == tid))
            n++;
    }
    return n;
}

static void test_ring_wraps_and_counts(void **state)
{
    (void)state;
    tsr_trace_t *t = NULL;
    assert_int_equal(tsr_trace_create(at("wrap.json"), 3, 16, 2, &t), TSR_OK);
    for (int i = 0; i < 20; i++) { /* 40 events in a ring of 16 */
        tsr_trace_event(t, TSR_TRACE_FORWARD, 'B', 0);
        tsr_trace_event(t, TSR_TRACE_FORWARD, 'E', 0);
    }
    assert_int_equal(tsr_trace_recorded(t), 40);
    assert_int_equal(tsr_trace_dropped(t), 24);
    assert_int_equal(tsr_trace_write(t), TSR_OK);
    json_t *j = events_of(at("wrap.json"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "otherData"), "dropped")), 24);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "otherData"), "tessera_rank")), 3);
    assert_int_equal(count_ph(j, "B", 0), 8);
    assert_int_equal(count_ph(j, "E", 0), 8);
    json_decref(j);
    tsr_trace_destroy(t);
}

static void test_unmatched_end_left_out(void **state)
{
    (void)state;
    tsr_trace_t *t = NULL;
    assert_int_equal(tsr_trace_create(at("odd.json"), 0, 5, 1, &t), TSR_OK);
    /* B(step) B E B E: a ring of 5 keeps all; then one more drops the step's B. */
    tsr_trace_event(t, TSR_TRACE_STEP, 'B', 1);
    tsr_trace_event(t, TSR_TRACE_DATA, 'B', 0);
    tsr_trace_event(t, TSR_TRACE_DATA, 'E', 0);
    tsr_trace_event(t, TSR_TRACE_FORWARD, 'B', 0);
    tsr_trace_event(t, TSR_TRACE_FORWARD, 'E', 0);
    tsr_trace_event(t, TSR_TRACE_STEP, 'E', 0);
    assert_int_equal(tsr_trace_write(t), TSR_OK);
    json_t *j = events_of(at("odd.json"));
    assert_int_equal(count_ph(j, "B", 0), 2);
    assert_int_equal(count_ph(j, "E", 0), 2); /* the step's E, without its B, is left out */
    json_decref(j);
    tsr_trace_destroy(t);
}

static void *worker(void *arg)
{
    for (int i = 0; i < 100; i++) {
        tsr_trace_mark(TSR_TRACE_CKPT_WRITE, 'B', i);
        tsr_trace_mark(TSR_TRACE_CKPT_WRITE, 'E', 0);
    }
    (void)arg;
    return NULL;
}

static void test_threads_own_rings(void **state)
{
    (void)state;
    tsr_trace_t *t = NULL;
    pthread_t th[3];
    assert_int_equal(tsr_trace_create(at("threads.json"), 1, 1000, 3, &t), TSR_OK);
    tsr_trace_set_current(t);
    tsr_trace_mark(TSR_TRACE_STEP, 'B', 1); /* the main thread claims ring 0 */
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    tsr_trace_mark(TSR_TRACE_STEP, 'E', 0);
    tsr_trace_set_current(NULL);
    /* Four threads, three rings: the last worker's 200 events are lost, and counted. */
    assert_int_equal(tsr_trace_recorded(t), 2 + 3 * 200);
    assert_int_equal(tsr_trace_dropped(t), 200);
    assert_int_equal(tsr_trace_write(t), TSR_OK);
    json_t *j = events_of(at("threads.json"));
    assert_int_equal(count_ph(j, "B", 1) + count_ph(j, "B", 2), 200);
    assert_int_equal(count_ph(j, "M", -1), 2 + 3);
    json_decref(j);
    tsr_trace_destroy(t);
    tsr_trace_mark(TSR_TRACE_STEP, 'B', 1); /* no current trace: nothing */
}

static void test_paths(void **state)
{
    (void)state;
    char buf[256];
    assert_int_equal(tsr_trace_path("out/trace.json", 3, buf, sizeof buf), TSR_OK);
    assert_string_equal(buf, "out/trace.rank3.json");
    assert_int_equal(tsr_trace_path("a.b/trace", 0, buf, sizeof buf), TSR_OK);
    assert_string_equal(buf, "a.b/trace.rank0");
    assert_int_equal(tsr_trace_path(".hidden", 1, buf, sizeof buf), TSR_OK);
    assert_string_equal(buf, ".hidden.rank1");
    assert_int_equal(tsr_trace_path("x.json", 1, buf, 8), TSR_EINVAL);
    tsr_trace_t *t = NULL;
    assert_int_equal(tsr_trace_create(at("never.json"), 0, 1, 1, &t), TSR_EINVAL);
    assert_null(t);
    assert_int_equal(tsr_trace_create("/proc/self/no/t.json", 0, 16, 1, &t), TSR_OK);
    assert_int_not_equal(tsr_trace_write(t), TSR_OK);
    tsr_trace_destroy(t);
}

static void write_rank(const char *name, int rank)
{
    tsr_trace_t *t = NULL;
    assert_int_equal(tsr_trace_create(at(name), rank, 64, 1, &t), TSR_OK);
    tsr_trace_event(t, TSR_TRACE_STEP, 'B', 1);
    tsr_trace_event(t, TSR_TRACE_STEP, 'E', 0);
    assert_int_equal(tsr_trace_write(t), TSR_OK);
    tsr_trace_destroy(t);
}

static void test_merge(void **state)
{
    (void)state;
    write_rank("m0.json", 0);
    write_rank("m1.json", 1);
    const char *in[2] = {at("m0.json"), at("m1.json")};
    assert_int_equal(tsr_trace_merge(in, 2, at("merged.json")), TSR_OK);
    json_t *j = events_of(at("merged.json"));
    assert_int_equal(json_array_size(json_object_get(json_object_get(j, "otherData"), "tessera_ranks")), 2);
    assert_int_equal(count_ph(j, "B", -1), 2);
    json_decref(j);
    const char *dup[2] = {at("m0.json"), at("m0.json")};
    assert_int_equal(tsr_trace_merge(dup, 2, at("dup.json")), TSR_EDATA);
    assert_non_null(strstr(tsr_last_error(), "rank 0 is already"));
    const char *self[1] = {at("m0.json")};
    assert_int_equal(tsr_trace_merge(self, 1, at("m0.json")), TSR_EINVAL);
    assert_int_equal(tsr_file_write_atomic(at("junk.json"), "{\"a\":1}", 7), TSR_OK);
    const char *junk[1] = {at("junk.json")};
    assert_int_equal(tsr_trace_merge(junk, 1, at("out.json")), TSR_EDATA);
    assert_non_null(strstr(tsr_last_error(), "not a tessera trace"));
}

static void test_report(void **state)
{
    (void)state;
    /* Rank 1 computes 3x as long; rank 0 waits for it in the reduction. */
    tsr_trace_rank_sums_t r[2] = {
        {.phase = {0.1, 1.0, 2.0, 6.5, 0.4, 0}, .step_s = 10, .steps = 100, .exposed_s = 6.0, .hidden_s = 0.5},
        {.phase = {0.1, 3.0, 6.0, 0.1, 0.8, 0}, .step_s = 10, .steps = 100, .exposed_s = 0.1, .hidden_s = 0.5},
    };
    tsr_trace_hints_t h = {.prefetch = 1, .bucket_kb = 1024, .blas_threads = 2, .cores_per_rank = 2, .ckpt_async = 1};
    tsr_trace_report_t rep;
    assert_int_equal(tsr_trace_report(r, 2, &h, &rep), TSR_OK);
    assert_int_equal(rep.slowest, 1);
    assert_int_equal(rep.slowest_waits, 0);
    assert_true(rep.imbalance > 1.4 && rep.imbalance < 1.6);
    assert_true(rep.step_ms > 99.9 && rep.step_ms < 100.1);
    assert_true(rep.nsuggest >= 1);
    assert_non_null(strstr(rep.suggest[0], "rank 1 computes"));
    assert_non_null(strstr(rep.text, "slowest rank: 1"));
    /* A data-bound run without prefetch is told to turn it on. */
    tsr_trace_rank_sums_t d[1] = {{.phase = {5, 2, 2, 0, 1, 0}, .step_s = 10, .steps = 10}};
    h.prefetch = 0;
    assert_int_equal(tsr_trace_report(d, 1, &h, &rep), TSR_OK);
    assert_non_null(strstr(rep.suggest[0], "data.prefetch = true"));
    tsr_trace_rank_sums_t none[1] = {{.steps = 0}};
    assert_int_equal(tsr_trace_report(none, 1, &h, &rep), TSR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_wraps_and_counts),
        cmocka_unit_test(test_unmatched_end_left_out),
        cmocka_unit_test(test_threads_own_rings),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_report),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
