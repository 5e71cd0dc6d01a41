/* SPDX-License-Identifier: BSD-3-Clause */
/* Sweep plans: the grid's order, random draws (in range, reproducible from
 * the seed, independent of the other trials), wrap-around past the grid,
 * ASHA rungs; the results table as CSV (quoted fields) and JSON read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileutil.h"
#include "sweep/internal.h"
#include "tessera/error.h"

static char dir[4096], ini[4200];

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TSR_TEST_TMP");
    snprintf(dir, sizeof dir, "%s/sweep.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    mkdir(tmp && tmp[0] ? tmp : "/tmp", 0755);
    if (!mkdtemp(dir))
        return -1;
    snprintf(ini, sizeof ini, "%s/base.ini", dir);
    static const char text[] = "[data]\npath = none.h5\n[train]\nepochs = 9\nbatch_size = 8\n";
    return tsr_file_write_atomic(ini, text, sizeof text - 1) ? -1 : 0;
}

static tsr_sweep_options_t opts(const char *const *grid, int ngrid, const char *const *random, int nrandom, long trials)
{
    return (tsr_sweep_options_t){.config = ini,
                                 .grid = grid,
                                 .ngrid = ngrid,
                                 .random = random,
                                 .nrandom = nrandom,
                                 .trials = trials,
                                 .ranks_per_trial = 1,
                                 .dir = dir};
}

static void test_grid_order(void **state)
{
    (void)state;
    const char *grid[] = {"optim.lr=0.1,0.2,0.3", "train.batch_size=16,32"};
    tsr_sweep_options_t o = opts(grid, 2, NULL, 0, 0);
    tsr_sweep_plan_t *p = NULL;
    assert_int_equal(tsr_sweep_plan_create(&o, &p), TSR_OK);
    assert_int_equal(tsr_sweep_plan_trials(p), 6);
    assert_string_equal(tsr_sweep_plan_key(p, 1), "train.batch_size");
    static const char *const lr[] = {"0.1", "0.2", "0.3", "0.1", "0.2", "0.3"};
    static const char *const bs[] = {"16", "16", "16", "32", "32", "32"};
    for (long t = 0; t < 6; t++) {
        assert_string_equal(tsr_sweep_plan_value(p, t, 0), lr[t]);
        assert_string_equal(tsr_sweep_plan_value(p, t, 1), bs[t]);
    }
    tsr_sweep_plan_destroy(p);
    /* More trials than grid points: the grid again. */
    o.trials = 8;
    assert_int_equal(tsr_sweep_plan_create(&o, &p), TSR_OK);
    assert_string_equal(tsr_sweep_plan_value(p, 7, 0), "0.2");
    assert_string_equal(tsr_sweep_plan_value(p, 7, 1), "16");
    tsr_sweep_plan_destroy(p);
}

static void test_random(void **state)
{
    (void)state;
    const char *random[] = {"optim.weight_decay=loguniform:1e-5:1e-2", "train.batch_size=int:2:4",
                            "model.activation=choice:relu|tanh"};
    tsr_sweep_options_t o = opts(NULL, 0, random, 3, 200);
    tsr_sweep_plan_t *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(tsr_sweep_plan_create(&o, &a), TSR_OK);
    assert_int_equal(tsr_sweep_plan_create(&o, &b), TSR_OK);
    o.seed = 7;
    assert_int_equal(tsr_sweep_plan_create(&o, &c), TSR_OK);
    int seen[5] = {0}, relu = 0, differ = 0;
    double lo = 1, hi = 0;
    for (long t = 0; t < 200; t++) {
        double wd = atof(tsr_sweep_plan_value(a, t, 0));
        lo = wd < lo ? wd : lo;
        hi = wd > hi ? wd : hi;
        int bs = atoi(tsr_sweep_plan_value(a, t, 1));
        assert_true(bs >= 2 && bs <= 4);
        seen[bs]++;
        relu += strcmp(tsr_sweep_plan_value(a, t, 2), "relu") == 0;
        for (int k = 0; k < 3; k++)
            assert_string_equal(tsr_sweep_plan_value(a, t, k), tsr_sweep_plan_value(b, t, k));
        differ += strcmp(tsr_sweep_plan_value(a, t, 0), tsr_sweep_plan_value(c, t, 0)) != 0;
    }
    /* Log-uniform: the range covered across decades, bounds kept. */
    assert_true(lo >= 1e-5 && lo < 1e-4 && hi <= 1e-2 && hi > 1e-3);
    assert_true(seen[2] > 30 && seen[3] > 30 && seen[4] > 30); /* both ends of int:A:B */
    assert_true(relu > 60 && relu < 140);
    assert_true(differ > 190); /* another seed, other draws */
    tsr_sweep_plan_destroy(a);
    tsr_sweep_plan_destroy(b);
    tsr_sweep_plan_destroy(c);
}

static void test_asha(void **state)
{
    (void)state;
    const char *grid[] = {"optim.lr=0.1,0.2"};
    tsr_sweep_options_t o = opts(grid, 1, NULL, 0, 0);
    o.asha = "1,3:0.5";
    tsr_sweep_plan_t *p = NULL;
    assert_int_equal(tsr_sweep_plan_create(&o, &p), TSR_OK);
    assert_int_equal(p->nrungs, 2);
    assert_int_equal(p->rungs[1], 3);
    assert_int_equal(p->epochs, 9);
    assert_true(fabs(p->keep - 0.5) < 1e-12);
    tsr_sweep_plan_destroy(p);
    o.asha = "3,9";
    assert_int_equal(tsr_sweep_plan_create(&o, &p), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "rung 9 is not before train.epochs = 9"));
}

static void test_results_roundtrip(void **state)
{
    (void)state;
    const char *random[] = {"model.activation=choice:relu|tanh"};
    const char *grid[] = {"optim.lr=0.1,0.2"};
    tsr_sweep_options_t o = opts(grid, 1, random, 1, 2);
    tsr_sweep_plan_t *p = NULL;
    assert_int_equal(tsr_sweep_plan_create(&o, &p), TSR_OK);
    sweep_trial_t t[2], back[2];
    memset(t, 0, sizeof t);
    memset(back, 0, sizeof back);
    sweep_point_t hist[2] = {{1.5, 1.2, 0.5}, {0.7, 0.6, 0.8}};
    t[0] = (sweep_trial_t){.state = TR_DONE,
                           .level = 0,
                           .train_loss = 0.7,
                           .test_loss = 0.6,
                           .test_accuracy = 0.8,
                           .seconds = 1.25,
                           .finished_at = 2,
                           .epochs = 2,
                           .hist = hist};
    snprintf(t[0].error, sizeof t[0].error, "a, \"quoted\" note");
    t[0].score[0] = 0.8;
    t[1] = (sweep_trial_t){.state = TR_PENDING,
                           .level = -1,
                           .train_loss = NAN,
                           .test_loss = NAN,
                           .test_accuracy = NAN,
                           .seconds = NAN,
                           .finished_at = NAN};
    t[1].score[0] = NAN;
    size_t len = 0;
    char *csv = sweep_results_csv(p, t, &len);
    assert_non_null(csv);
    assert_non_null(strstr(csv, "trial,optim.lr,model.activation,status,epochs,test_accuracy"));
    assert_non_null(strstr(csv, ",done,2,0.8,0.6,0.7,1.25,\"a, \"\"quoted\"\" note\"\n"));
    assert_non_null(strstr(csv, "\n1,0.2,"));
    char *json = sweep_results_json(p, t, "sweep-v3", 0, 5);
    char path[4300], id[96];
    snprintf(path, sizeof path, "%s/trials.json", dir);
    assert_int_equal(tsr_file_write_atomic(path, json, strlen(json)), TSR_OK);
    assert_int_equal(sweep_results_load(path, p, back, id, sizeof id), TSR_OK);
    assert_string_equal(id, "sweep-v3");
    assert_int_equal(back[0].state, TR_DONE);
    assert_int_equal(back[0].epochs, 2);
    assert_true(fabs(back[0].hist[1].test_accuracy - 0.8) < 1e-9 && fabs(back[0].score[0] - 0.8) < 1e-9);
    assert_string_equal(back[0].error, t[0].error);
    assert_int_equal(back[1].state, TR_PENDING);
    assert_true(isnan(back[1].test_accuracy));
    free(back[0].hist);
    free(back[1].hist);
    free(csv);
    free(json);
    tsr_sweep_plan_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid_order),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_asha),
        cmocka_unit_test(test_results_roundtrip),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
