/* SPDX-License-Identifier: BSD-3-Clause */
/* src/perf: phase timers (every second charged to one phase), PAPI events
 * per phase read through real PAPI (tessera's own software-defined events,
 * which count on any machine, and the hardware's where it has counters),
 * bad event lists, the derived figures, tessera's counters and the
 * process's resource use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tessera/error.h"
#include "tessera/log.h"
#include "tessera/perf.h"

static volatile double sink;

static void spin(double seconds)
{
    double t0 = tsr_time_now(), x = 0;
    while (tsr_time_now() - t0 < seconds)
        for (int i = 0; i < 1000; i++)
            x += i * 0.5;
    sink = x;
}

static double sum_seconds(const tsr_perf_totals_t *t)
{
    double s = 0;
    for (int k = 0; k < TSR_PHASE_COUNT; k++)
        s += t->seconds[k];
    return s;
}

static void test_phases(void **state)
{
    (void)state;
    tsr_perf_t *p = NULL;
    double t0 = tsr_time_now();
    assert_int_equal(tsr_perf_create(NULL, &p), TSR_OK);
    assert_int_equal(tsr_perf_nevents(p), 0);
    assert_null(tsr_perf_note(p));
    static const tsr_phase_t seq[] = {TSR_PHASE_DATA,   TSR_PHASE_FORWARD,   TSR_PHASE_BACKWARD,
                                      TSR_PHASE_REDUCE, TSR_PHASE_OPTIMIZER, TSR_PHASE_CHECKPOINT,
                                      TSR_PHASE_OTHER,  TSR_PHASE_FORWARD,   TSR_PHASE_OTHER};
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        tsr_perf_phase(p, seq[i]);
        assert_int_equal(tsr_perf_current(p), seq[i]);
        spin(0.001);
    }
    tsr_perf_phase(p, TSR_PHASE_COUNT); /* out of range: ignored */
    assert_int_equal(tsr_perf_current(p), TSR_PHASE_OTHER);
    tsr_perf_totals_t t;
    tsr_perf_totals(p, &t);
    double wall = tsr_time_now() - t0;
    /* Every second from create to the totals is charged to exactly one phase. */
    assert_true(sum_seconds(&t) > 0 && sum_seconds(&t) <= wall);
    assert_true(t.seconds[TSR_PHASE_FORWARD] > 0 && t.seconds[TSR_PHASE_EVAL] == 0);
    assert_true(t.entries[TSR_PHASE_FORWARD] == 2 && t.entries[TSR_PHASE_DATA] == 1);
    assert_true(t.entries[TSR_PHASE_OTHER] == 3); /* create, and two switches */
    tsr_perf_totals(p, &t);                       /* taking totals begins no phase */
    assert_true(t.entries[TSR_PHASE_OTHER] == 3);
    tsr_perf_destroy(p);
    tsr_perf_phase(NULL, TSR_PHASE_DATA); /* NULL: monitoring off */
    tsr_perf_destroy(NULL);
    assert_string_equal(tsr_phase_name(TSR_PHASE_REDUCE), "reduce");
    assert_null(tsr_phase_name(TSR_PHASE_COUNT));
}

/* The caller's clock reading (the training loop's one phase hook): the
 * TSC's seconds so far carried over, then exactly the caller's intervals,
 * and plain switches after it on the same clock. */
static void test_phase_at(void **state)
{
    (void)state;
    tsr_perf_t *p = NULL;
    double t0 = tsr_time_now();
    assert_int_equal(tsr_perf_create(NULL, &p), TSR_OK);
    tsr_perf_phase(p, TSR_PHASE_DATA);
    spin(0.002);
    double t = tsr_time_now();
    tsr_perf_phase_at(p, TSR_PHASE_FORWARD, t);
    tsr_perf_phase_at(p, TSR_PHASE_BACKWARD, t + 0.25);
    tsr_perf_phase_at(p, TSR_PHASE_FORWARD, t + 0.75);
    tsr_perf_phase_at(p, TSR_PHASE_COUNT, t + 1); /* out of range: ignored */
    tsr_perf_phase_at(NULL, TSR_PHASE_DATA, t);   /* NULL: monitoring off */
    tsr_perf_phase_at(p, TSR_PHASE_OTHER, t + 1);
    spin(0.001);
    tsr_perf_phase(p, TSR_PHASE_EVAL);
    spin(0.001);
    tsr_perf_totals_t tt;
    tsr_perf_totals(p, &tt);
    assert_float_equal(tt.seconds[TSR_PHASE_FORWARD], 0.5, 1e-9);
    assert_float_equal(tt.seconds[TSR_PHASE_BACKWARD], 0.5, 1e-9);
    double data = tt.seconds[TSR_PHASE_DATA];
    assert_true(data >= 0.0015 && data <= t - t0 + 1e-6);
    assert_true(tt.seconds[TSR_PHASE_EVAL] > 0);
    assert_true(tt.entries[TSR_PHASE_FORWARD] == 2 && tt.entries[TSR_PHASE_EVAL] == 1);
    tsr_perf_destroy(p);
}

static void test_counters(void **state)
{
    (void)state;
    int64_t before = tsr_counter_get(TSR_COUNTER_PREDICTIONS);
    tsr_counter_add(TSR_COUNTER_PREDICTIONS, 7);
    tsr_counter_add(TSR_COUNTER_COUNT, 7); /* ignored */
    assert_int_equal(tsr_counter_get(TSR_COUNTER_PREDICTIONS) - before, 7);
    assert_int_equal(tsr_counter_get(TSR_COUNTER_COUNT), 0);
    for (int i = 0; i < TSR_COUNTER_COUNT; i++) {
        assert_non_null(tsr_counter_name((tsr_counter_t)i));
        assert_non_null(tsr_counter_help((tsr_counter_t)i));
        for (int j = 0; j < i; j++)
            assert_string_not_equal(tsr_counter_name((tsr_counter_t)i), tsr_counter_name((tsr_counter_t)j));
    }
    assert_string_equal(tsr_counter_name(TSR_COUNTER_STEPS), "steps");
}

static void test_derive(void **state)
{
    (void)state;
    const char *ev[3] = {"PAPI_TOT_CYC", "PAPI_TOT_INS", "PAPI_SP_OPS"};
    tsr_perf_totals_t t;
    memset(&t, 0, sizeof t);
    t.seconds[TSR_PHASE_FORWARD] = 2;
    t.counts[TSR_PHASE_FORWARD][0] = 1000;
    t.counts[TSR_PHASE_FORWARD][1] = 2500;
    t.counts[TSR_PHASE_FORWARD][2] = 8e9;
    t.counts[TSR_PHASE_BACKWARD][0] = 1000;
    t.counts[TSR_PHASE_BACKWARD][1] = 500;
    tsr_perf_derived_t d;
    tsr_perf_derive(ev, 3, &t, TSR_PHASE_FORWARD, &d);
    assert_true(fabs(d.ipc - 2.5) < 1e-12 && fabs(d.gflops - 4) < 1e-12 && isnan(d.mem_bytes));
    tsr_perf_derive(ev, 3, &t, -1, &d);
    assert_true(fabs(d.ipc - 1.5) < 1e-12);
    tsr_perf_derive(ev, 1, &t, -1, &d); /* no instructions counted */
    assert_true(isnan(d.ipc) && isnan(d.gflops));
}

static void test_resources(void **state)
{
    (void)state;
    tsr_resource_t r;
    spin(0.01);
    assert_int_equal(tsr_resource_sample(NULL, &r), TSR_OK);
    assert_true(r.cpu_user_s + r.cpu_system_s > 0);
    assert_true(r.rss_bytes > 0 && r.peak_rss_bytes >= r.rss_bytes && r.virtual_bytes >= r.rss_bytes);
    assert_true(r.ctx_voluntary + r.ctx_involuntary >= 0 && r.children_cpu_s >= 0);
    assert_true(r.gpu_found == 0 && isnan(r.gpu_power_w));
    /* A GPU NVML does not know (or no NVML at all): not reported, no error. */
    assert_int_equal(tsr_resource_sample("0000:ff:1f.7", &r), TSR_OK);
    assert_true(r.gpu_found == 0 && isnan(r.gpu_util_ratio));
}

#ifdef TSR_HAVE_PAPI
/* tessera's own counters through PAPI's sde component, charged per phase. */
static void test_sde_events(void **state)
{
    (void)state;
    tsr_perf_t *p = NULL;
    assert_int_equal(tsr_perf_create(" sde:::tessera::steps , sde:::tessera::ckpt_bytes", &p), TSR_OK);
    assert_null(tsr_perf_note(p));
    assert_int_equal(tsr_perf_nevents(p), 2);
    assert_string_equal(tsr_perf_events(p)[0], "sde:::tessera::steps");
    tsr_perf_phase(p, TSR_PHASE_FORWARD);
    tsr_counter_add(TSR_COUNTER_STEPS, 3);
    tsr_perf_phase(p, TSR_PHASE_CHECKPOINT);
    tsr_counter_add(TSR_COUNTER_STEPS, 5);
    tsr_counter_add(TSR_COUNTER_CKPT_BYTES, 4096);
    tsr_perf_phase(p, TSR_PHASE_OTHER);
    tsr_perf_totals_t t;
    tsr_perf_totals(p, &t);
    assert_true(t.counts[TSR_PHASE_FORWARD][0] == 3 && t.counts[TSR_PHASE_CHECKPOINT][0] == 5);
    assert_true(t.counts[TSR_PHASE_CHECKPOINT][1] == 4096 && t.counts[TSR_PHASE_FORWARD][1] == 0);
    tsr_perf_destroy(p);
}

/* The CPU's own counters where this machine has them; else one note that
 * names the missing component, and no error. */
static void test_hardware_events(void **state)
{
    (void)state;
    tsr_perf_t *p = NULL;
    assert_int_equal(tsr_perf_create("PAPI_TOT_INS,PAPI_TOT_CYC", &p), TSR_OK);
    const char *note = tsr_perf_note(p);
    if (tsr_perf_nevents(p) == 0) {
        assert_non_null(note);
        assert_non_null(strstr(note, "PAPI_TOT_INS, PAPI_TOT_CYC"));
        print_message("hardware counters: skipped, this machine has none: %s\n", note);
        tsr_perf_destroy(p);
        return;
    }
    tsr_perf_phase(p, TSR_PHASE_FORWARD);
    spin(0.01);
    tsr_perf_phase(p, TSR_PHASE_OTHER);
    tsr_perf_totals_t t;
    tsr_perf_totals(p, &t);
    assert_true(t.counts[TSR_PHASE_FORWARD][0] > 0);
    tsr_perf_destroy(p);
}

static void expect_bad(const char *events, const char *want)
{
    tsr_perf_t *p = (tsr_perf_t *)&p;
    if (tsr_perf_create(events, &p) != TSR_EINVAL)
        fail_msg("'%s': accepted (%s)", events, tsr_perf_note(p) ? tsr_perf_note(p) : "no note");
    assert_null(p);
    if (!strstr(tsr_last_error(), want))
        fail_msg("'%s': '%s' lacks '%s'", events, tsr_last_error(), want);
}

static void test_bad_lists(void **state)
{
    (void)state;
    expect_bad("PAPI_TOT_INZ", "unknown PAPI event PAPI_TOT_INZ (close: PAPI_TOT_INS");
    expect_bad("PAPI_TOT_INS,PAPI_L1_DCMM", "unknown PAPI event PAPI_L1_DCMM (close: PAPI_L1_DCM");
    expect_bad("sde:::tessera::stepz", "close: sde:::tessera::steps");
    expect_bad("nvml:::Tesla:power", "no PAPI component 'nvml'");
    expect_bad("PAPI_TOT_INS,PAPI_TOT_INS", "listed twice");
    expect_bad("a,b,c,d,e,f,g,h,i", "more than 8 events");
}
#endif

int main(void)
{
    tsr_log_set_level(TSR_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phases),     cmocka_unit_test(test_phase_at),        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_derive),     cmocka_unit_test(test_resources),
#ifdef TSR_HAVE_PAPI
        cmocka_unit_test(test_sde_events), cmocka_unit_test(test_hardware_events), cmocka_unit_test(test_bad_lists),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
