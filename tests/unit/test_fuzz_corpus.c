/* SPDX-License-Identifier: BSD-3-Clause */
/* Replays the fuzz corpus (tests/fuzz/corpus) through the fuzz harness, so
 * the request path is exercised under ASan/UBSan without clang or
 * libFuzzer. Each corpus file is named "<expected status>-<what>". Some
 * inputs too big to keep as files are made here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>

#define FUZZ_NO_ENTRY
#include "../fuzz/fuzz_request.c"

static int run(const char *data, size_t len)
{
    int status = 0;
    assert_int_equal(fz_request((const uint8_t *)data, len, &status), 0);
    return status;
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

static void test_corpus(void **state)
{
    (void)state;
    char dir[4096], path[8192];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus", TSR_SOURCE_DIR);
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, by_name), files = 0;
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        if (name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", dir, name);
            FILE *f = fopen(path, "rb");
            assert_non_null(f);
            static char buf[FZ_MAX];
            size_t len = fread(buf, 1, sizeof buf, f);
            fclose(f);
            int status = 0, want = atoi(name);
            if (fz_request((const uint8_t *)buf, len, &status) != 0)
                fail_msg("%s: the harness found a problem (see above)", name);
            if (status != want)
                fail_msg("%s: status %d, expected %d", name, status, want);
            files++;
        }
        free(ents[i]);
    }
    free(ents);
    assert_true(files >= 50);
}

static void test_generated(void **state)
{
    (void)state;
    /* A body over the 64 KiB limit, declared and undeclared. */
    size_t big = 70 * 1024;
    char *b = malloc(big + 64);
    int k = snprintf(b, big + 64, "POST /predict\nContent-Length: %zu\n\n", big);
    memset(b + k, ' ', big);
    assert_int_equal(run(b, (size_t)k + big), 413);
    k = snprintf(b, big + 64, "POST /predict\n\n");
    memset(b + k, ' ', big);
    assert_int_equal(run(b, (size_t)k + big), 413);
    /* Many rows at once: one model call per max_batch (4) rows. */
    k = snprintf(b, big + 64, "{\"inputs\":[");
    for (int i = 0; i < 100; i++)
        k += snprintf(b + k, big + 64 - (size_t)k, "%s[%d,0.5,-1,2]", i ? "," : "", i);
    k += snprintf(b + k, big + 64 - (size_t)k, "]}");
    assert_int_equal(run(b, (size_t)k), 200);
    assert_int_equal(run(b, (size_t)k), 200); /* now from the cache */
    /* Bytes that are not text at all. */
    for (int i = 0; i < 4096; i++)
        b[i] = (char)(i * 7919 % 251);
    int st = run(b, 4096);
    assert_true(st == 400 || st == 422 || st == 404 || st == 405);
    free(b);
    fz_cleanup();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_generated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
