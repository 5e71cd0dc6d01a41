/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the SLURM time parser (tsr_slurm_parse_time, what
 * tessera submit --time and [submit] time go through): every --time form
 * SLURM documents, rounding up to whole minutes, and the strings it must
 * refuse (a table each), including numbers large enough to overflow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tessera/slurm.h"

#include <limits.h>
#include <stdio.h>

static const struct {
    const char *text;
    long minutes;
} good[] = {
    {"0", 0}, /* MM: SLURM's "no limit", refused by submit itself */
    {"1", 1},
    {"90", 90}, /* minutes past the hour are not folded */
    {"007", 7},
    {"0:59", 1}, /* MM:SS rounds up */
    {"90:00", 90},
    {"90:30", 91},
    {"1:00:00", 60}, /* HH:MM:SS */
    {"1:00:01", 61},
    {"36:00:00", 2160}, /* hours past a day */
    {"0:00:00", 0},
    {"1-0", 1440}, /* D-HH */
    {"1-02", 1560},
    {"1-02:03", 1563},    /* D-HH:MM */
    {"1-02:03:04", 1564}, /* D-HH:MM:SS, the seconds round up */
    {"1-02:03:00", 1563},
    {"0-00:00:01", 1},
    {"7-00:00:00", 10080},
    {"100000000", 100000000}, /* the largest number a field may hold */
    {"1000-00:00:00", 1440000},
};

static const char *const bad[] = {
    "",
    "1h",
    "2d",
    "h:1",
    "-1",
    "-5:00",
    "+5",
    " 5",
    "5 ",
    "5\n",
    "1:2:3:4", /* four fields */
    "1-02:03:04:05",
    "1-", /* a day and nothing after the dash */
    "-1-00",
    "1--2",
    "1-2-3",
    "a-1",
    "1-a",
    ":5",
    "1::2",
    "1.5",
    "1,5",
    "0x10",
    "100000001", /* a field over the bound */
    "1-100000001",
    "99999999999999999999", /* beyond long: strtol saturates; must not overflow */
    "99999999999999999999-00",
    "1:99999999999999999999",
    "100000000-00", /* 1e8 days: more than INT_MAX minutes */
    "2000000-00:00:00",
};

static void test_good_forms(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        long got = tsr_slurm_parse_time(good[i].text);
        if (got != good[i].minutes)
            fail_msg("'%s': %ld minutes, expected %ld", good[i].text, got, good[i].minutes);
    }
}

static void test_refused(void **state)
{
    (void)state;
    assert_int_equal(tsr_slurm_parse_time(NULL), -1);
    assert_int_equal(tsr_slurm_parse_time("UNLIMITED"), TSR_SLURM_TIME_UNLIMITED);
    assert_int_equal(tsr_slurm_parse_time("infinite"), TSR_SLURM_TIME_UNLIMITED);
    assert_int_equal(tsr_slurm_parse_time("UNLIMITEDX"), -1);
    assert_int_equal(tsr_slurm_parse_time("1-UNLIMITED"), -1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long got = tsr_slurm_parse_time(bad[i]);
        if (got != -1)
            fail_msg("'%s': %ld minutes, expected -1 (refused)", bad[i], got);
    }
}

/* Every H:M:S of a day gives ceil(seconds / 60), and D-H:M:S adds D days. */
static void test_sweep(void **state)
{
    (void)state;
    char text[64];
    for (long s = 0; s < 24 * 3600; s += 7) {
        long h = s / 3600, m = s / 60 % 60, sec = s % 60;
        snprintf(text, sizeof text, "%ld:%02ld:%02ld", h, m, sec);
        assert_int_equal(tsr_slurm_parse_time(text), (s + 59) / 60);
        snprintf(text, sizeof text, "3-%ld:%02ld:%02ld", h, m, sec);
        assert_int_equal(tsr_slurm_parse_time(text), 3 * 1440 + (s + 59) / 60);
        snprintf(text, sizeof text, "%ld:%02ld", s / 60, sec);
        assert_int_equal(tsr_slurm_parse_time(text), (s + 59) / 60);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_forms),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
