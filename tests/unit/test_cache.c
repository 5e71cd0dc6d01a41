/* SPDX-License-Identifier: BSD-3-Clause */
/* Cache: hits and misses, LRU eviction order, TTL expiry on an injected
 * clock, the byte budget, replacement, clear, and many threads at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "tessera/cache.h"
#include "tessera/error.h"

static double fake_now;
static double fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

static tsr_cache_t *make(size_t max_bytes, double ttl)
{
    tsr_cache_config_t cfg = {.max_bytes = max_bytes, .ttl_s = ttl, .clock = fake_clock};
    tsr_cache_t *c = NULL;
    fake_now = 1000.0;
    assert_int_equal(tsr_cache_create(&cfg, &c), TSR_OK);
    return c;
}

static void put_str(tsr_cache_t *c, const char *k, const char *v)
{
    assert_int_equal(tsr_cache_put(c, k, strlen(k), v, strlen(v) + 1), TSR_OK);
}

/* Returns 1 and the value in buf on a hit. */
static int get_str(tsr_cache_t *c, const char *k, char *buf, size_t cap)
{
    size_t n = 0;
    int hit = tsr_cache_get(c, k, strlen(k), buf, cap, &n);
    if (hit)
        assert_true(n <= cap);
    return hit;
}

static void test_hit_miss(void **state)
{
    (void)state;
    tsr_cache_t *c = make(1 << 20, 0);
    char buf[64];
    assert_int_equal(get_str(c, "a", buf, sizeof buf), 0);
    put_str(c, "a", "alpha");
    assert_int_equal(get_str(c, "a", buf, sizeof buf), 1);
    assert_string_equal(buf, "alpha");
    /* Keys are bytes: a prefix is a different key. */
    assert_int_equal(tsr_cache_get(c, "a", 0, buf, sizeof buf, NULL), 0);
    put_str(c, "a", "again"); /* replace */
    assert_int_equal(get_str(c, "a", buf, sizeof buf), 1);
    assert_string_equal(buf, "again");
    tsr_cache_stats_t st;
    tsr_cache_stats(c, &st);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.misses, 2);
    assert_int_equal(st.inserts, 2);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.bytes, tsr_cache_entry_overhead() + 1 + 6);
    assert_int_equal(tsr_cache_remove(c, "a", 1), 1);
    assert_int_equal(tsr_cache_remove(c, "a", 1), 0);
    tsr_cache_destroy(c);
}

static void test_small_buffer(void **state)
{
    (void)state;
    tsr_cache_t *c = make(1 << 20, 0);
    char buf[4] = "xyz";
    size_t n = 0;
    put_str(c, "k", "a long value");
    assert_int_equal(tsr_cache_get(c, "k", 1, buf, sizeof buf, &n), 1);
    assert_int_equal(n, 13);
    assert_string_equal(buf, "xyz"); /* nothing copied when it does not fit */
    tsr_cache_destroy(c);
}

/* Budget for exactly three entries of 1-byte keys and 2-byte values. */
static void test_lru_order(void **state)
{
    (void)state;
    size_t per = tsr_cache_entry_overhead() + 1 + 2;
    tsr_cache_t *c = make(3 * per, 0);
    char buf[8];
    put_str(c, "a", "A");
    put_str(c, "b", "B");
    put_str(c, "c", "C");
    assert_int_equal(get_str(c, "a", buf, sizeof buf), 1); /* order now a, c, b */
    put_str(c, "d", "D");                                  /* evicts b */
    assert_int_equal(get_str(c, "b", buf, sizeof buf), 0);
    put_str(c, "e", "E"); /* evicts c (a and d were used later) */
    assert_int_equal(get_str(c, "c", buf, sizeof buf), 0);
    assert_int_equal(get_str(c, "a", buf, sizeof buf), 1);
    assert_int_equal(get_str(c, "d", buf, sizeof buf), 1);
    assert_int_equal(get_str(c, "e", buf, sizeof buf), 1);
    tsr_cache_stats_t st;
    tsr_cache_stats(c, &st);
    assert_int_equal(st.evictions, 2);
    assert_int_equal(st.entries, 3);
    assert_true(st.bytes <= st.max_bytes);
    tsr_cache_destroy(c);
}

static void test_ttl(void **state)
{
    (void)state;
    tsr_cache_t *c = make(1 << 20, 10.0);
    char buf[8];
    put_str(c, "a", "A");
    fake_now += 5;
    put_str(c, "b", "B");
    fake_now += 4.9; /* a is 9.9 s old */
    assert_int_equal(get_str(c, "a", buf, sizeof buf), 1);
    fake_now += 0.2; /* a is 10.1 s old, b 5.1 s */
    assert_int_equal(get_str(c, "a", buf, sizeof buf), 0);
    assert_int_equal(get_str(c, "b", buf, sizeof buf), 1);
    put_str(c, "b", "B"); /* replacing restarts the TTL */
    fake_now += 9;
    assert_int_equal(get_str(c, "b", buf, sizeof buf), 1);
    fake_now += 2;
    assert_int_equal(get_str(c, "b", buf, sizeof buf), 0);
    tsr_cache_stats_t st;
    tsr_cache_stats(c, &st);
    assert_int_equal(st.expirations, 2);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    tsr_cache_destroy(c);
}

static void test_budget(void **state)
{
    (void)state;
    size_t budget = 64 * 1024;
    tsr_cache_t *c = make(budget, 0);
    char key[16], val[300];
    memset(val, 'v', sizeof val);
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(tsr_cache_put(c, key, (size_t)n, val, (size_t)(i % 300)), TSR_OK);
        tsr_cache_stats_t st;
        tsr_cache_stats(c, &st);
        assert_true(st.bytes <= budget);
    }
    /* The newest entries survive. */
    char buf[300];
    assert_int_equal(tsr_cache_get(c, "k4999", 5, buf, sizeof buf, NULL), 1);
    assert_int_equal(tsr_cache_get(c, "k0", 2, buf, sizeof buf, NULL), 0);
    /* An entry larger than the budget is refused without disturbing others. */
    static char huge[128 * 1024];
    assert_int_equal(tsr_cache_put(c, "h", 1, huge, sizeof huge), TSR_OK);
    assert_int_equal(tsr_cache_get(c, "h", 1, NULL, 0, NULL), 0);
    assert_int_equal(tsr_cache_get(c, "k4999", 5, buf, sizeof buf, NULL), 1);
    tsr_cache_stats_t st;
    tsr_cache_stats(c, &st);
    assert_int_equal(st.rejected, 1);
    assert_true(st.evictions > 4000);
    tsr_cache_clear(c);
    tsr_cache_stats(c, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(tsr_cache_get(c, "k4999", 5, buf, sizeof buf, NULL), 0);
    tsr_cache_destroy(c);
}

static void test_zero_budget(void **state)
{
    (void)state;
    tsr_cache_t *c = make(0, 0);
    put_str(c, "a", "A");
    assert_int_equal(tsr_cache_get(c, "a", 1, NULL, 0, NULL), 0);
    tsr_cache_destroy(c);
    tsr_cache_destroy(NULL);
    tsr_cache_config_t bad = {.max_bytes = 1, .ttl_s = -1};
    assert_int_equal(tsr_cache_create(&bad, &c), TSR_EINVAL);
}

static void *hammer(void *arg)
{
    tsr_cache_t *c = arg;
    float row[16];
    char buf[64];
    for (int i = 0; i < 20000; i++) {
        for (int j = 0; j < 16; j++)
            row[j] = (float)((i * 7 + j) % 500);
        size_t n;
        if (!tsr_cache_get(c, row, sizeof row, buf, sizeof buf, &n))
            tsr_cache_put(c, row, sizeof row, "0123456789", 10);
        else if (n != 10 || memcmp(buf, "0123456789", 10) != 0)
            return (void *)1;
        if (i % 5000 == 0)
            tsr_cache_clear(c);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    tsr_cache_config_t cfg = {.max_bytes = 32 * 1024, .ttl_s = 1};
    tsr_cache_t *c = NULL;
    assert_int_equal(tsr_cache_create(&cfg, &c), TSR_OK);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, c);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        assert_null(r);
    }
    tsr_cache_stats_t st;
    tsr_cache_stats(c, &st);
    assert_int_equal(st.hits + st.misses, 80000);
    assert_true(st.hits > 0);
    assert_true(st.bytes <= cfg.max_bytes);
    tsr_cache_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_miss), cmocka_unit_test(test_small_buffer), cmocka_unit_test(test_lru_order),
        cmocka_unit_test(test_ttl),      cmocka_unit_test(test_budget),       cmocka_unit_test(test_zero_budget),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
