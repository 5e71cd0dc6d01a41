/* SPDX-License-Identifier: BSD-3-Clause */
/* Configuration: loading, types, unknown keys with suggestions, overrides. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/config.h"
#include "tessera/error.h"

static char path[512];

static void write_ini(const char *text)
{
    const char *tmp = getenv("TSR_TEST_TMP");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", tmp ? tmp : "/tmp");
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/test_config.ini", tmp ? tmp : "/tmp");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int load(const char *text, tsr_config_t **out)
{
    write_ini(text);
    assert_int_equal(tsr_config_create(out), TSR_OK);
    return tsr_config_load(*out, path);
}

static void test_defaults_and_values(void **state)
{
    (void)state;
    tsr_config_t *c;
    assert_int_equal(load("# comment\n[data]\npath = d.h5\n[train]\nepochs = 3\nbatch_size=64\n[model]\n"
                          "hidden = 128, 64\nactivation = tanh\n[optim]\nlr = 0.05\n",
                          &c),
                     TSR_OK);
    assert_string_equal(tsr_config_get(c, "data", "path"), "d.h5");
    assert_int_equal(tsr_config_get_long(c, "train", "epochs"), 3);
    assert_int_equal(tsr_config_get_long(c, "train", "batch_size"), 64);
    assert_int_equal(tsr_config_get_long(c, "train", "seed"), 42);
    assert_float_equal(tsr_config_get_double(c, "optim", "lr"), 0.05, 1e-12);
    assert_true(tsr_config_get_bool(c, "data", "prefetch"));
    long h[4];
    assert_int_equal(tsr_config_get_ints(c, "model", "hidden", h, 4), 2);
    assert_int_equal(h[0], 128);
    assert_int_equal(h[1], 64);
    assert_string_equal(tsr_config_get(c, "model", "activation"), "tanh");
    assert_non_null(strstr(tsr_config_origin(c, "train", "epochs"), "test_config.ini:5"));
    assert_string_equal(tsr_config_origin(c, "train", "seed"), "default");
    char *dump = tsr_config_dump(c);
    assert_non_null(strstr(dump, "[train]\nepochs = 3\n"));
    free(dump);
    tsr_config_destroy(c);
}

static void test_unknown_key_suggests(void **state)
{
    (void)state;
    tsr_config_t *c;
    assert_int_equal(load("[train]\nepochs = 3\nbatchsize = 64\n", &c), TSR_EINVAL);
    const char *e = tsr_last_error();
    assert_non_null(strstr(e, "test_config.ini:3"));
    assert_non_null(strstr(e, "batchsize"));
    assert_non_null(strstr(e, "train.batch_size"));
    tsr_config_destroy(c);
}

static void test_unknown_section(void **state)
{
    (void)state;
    tsr_config_t *c;
    assert_int_equal(load("[trian]\nepochs = 3\n", &c), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "[trian]"));
    assert_non_null(strstr(tsr_last_error(), "[train]"));
    tsr_config_destroy(c);
}

static void test_bad_values(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "[train]\nepochs = ten\n",  "[train]\nbatch_size = 0\n",     "[optim]\nlr = -1\n",
        "[optim]\nlr = nan\n",      "[model]\nactivation = swish\n", "[data]\nprefetch = maybe\n",
        "[model]\nhidden = 12,x\n", "just garbage line\n",           "epochs = 3\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tsr_config_t *c;
        int rc = load(bad[i], &c);
        if (rc != TSR_EINVAL)
            fail_msg("case %zu (%s) gave %d", i, bad[i], rc);
        assert_non_null(strstr(tsr_last_error(), "test_config.ini"));
        tsr_config_destroy(c);
    }
}

static void test_set_overrides(void **state)
{
    (void)state;
    tsr_config_t *c;
    assert_int_equal(tsr_config_create(&c), TSR_OK);
    assert_int_equal(tsr_config_set(c, "train.epochs=7"), TSR_OK);
    assert_int_equal(tsr_config_get_long(c, "train", "epochs"), 7);
    assert_int_equal(tsr_config_set(c, "train.epoch=7"), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "train.epochs"));
    assert_int_equal(tsr_config_set(c, "noequals"), TSR_EINVAL);
    assert_int_equal(tsr_config_set(c, "optim.name=adagrad"), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "sgd|adamw"));
    tsr_config_destroy(c);
}

static void test_missing_file(void **state)
{
    (void)state;
    tsr_config_t *c;
    assert_int_equal(tsr_config_create(&c), TSR_OK);
    assert_int_equal(tsr_config_load(c, "/nonexistent/x.ini"), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "/nonexistent/x.ini"));
    tsr_config_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_values), cmocka_unit_test(test_unknown_key_suggests),
        cmocka_unit_test(test_unknown_section),     cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_set_overrides),       cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
