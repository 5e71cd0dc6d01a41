/* SPDX-License-Identifier: BSD-3-Clause */
/* In-process tasks (tessera/tasks.h) on one process, under ASan/UBSan:
 * results, dependencies (chains, diamonds, failures skipping what waits),
 * priorities, retries with backoff, cancel (waiting and running), callbacks,
 * tasks that submit tasks, work stealing, many submitting threads, bad
 * arguments. Every check waits on real threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tessera/error.h"
#include "tessera/tasks.h"

static tsr_tasks_t *farm(int threads)
{
    tsr_tasks_config_t cfg;
    tsr_tasks_config_default(&cfg);
    cfg.threads = threads;
    tsr_tasks_t *t = NULL;
    assert_int_equal(tsr_tasks_create(&cfg, &t), TSR_OK);
    return t;
}

static int square(tsr_task_ctx_t *ctx, const void *arg, size_t len)
{
    long v;
    assert_int_equal(len, sizeof v);
    memcpy(&v, arg, sizeof v);
    v *= v;
    return tsr_task_set_result(ctx, &v, sizeof v);
}

/* A result longer than the inline storage, built from the argument. */
static int repeat(tsr_task_ctx_t *ctx, const void *arg, size_t len)
{
    char buf[1000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = ((const char *)arg)[i % len];
    return tsr_task_set_result(ctx, buf, sizeof buf);
}

static void test_results(void **state)
{
    (void)state;
    tsr_tasks_t *t = farm(3);
    enum { N = 20000 };
    static tsr_task_id_t id[N];
    for (long i = 0; i < N; i++)
        assert_int_equal(tsr_tasks_submit(t, square, &i, sizeof i, NULL, &id[i]), TSR_OK);
    tsr_task_id_t big;
    assert_int_equal(tsr_tasks_submit(t, repeat, "abcdefghijklmnopqrstuvwxyz0123456789", 36, NULL, &big), TSR_OK);
    assert_int_equal(tsr_tasks_wait_all(t), TSR_OK);
    for (long i = 0; i < N; i++) {
        const void *p;
        size_t n;
        int rc, attempts;
        long v;
        assert_int_equal(tsr_tasks_result(t, id[i], &p, &n, &rc, &attempts), TSR_OK);
        assert_int_equal(n, sizeof v);
        memcpy(&v, p, sizeof v);
        assert_int_equal(v, i * i);
        assert_int_equal(rc, 0);
        assert_int_equal(attempts, 1);
    }
    const char *s;
    size_t n;
    assert_int_equal(tsr_tasks_result(t, big, (const void **)&s, &n, NULL, NULL), TSR_OK);
    assert_int_equal(n, 1000);
    assert_memory_equal(s + 36, "abcdefghij", 10);
    assert_int_equal(tsr_tasks_release(t, big), TSR_OK);
    assert_int_equal(tsr_tasks_state(t, big), TSR_TASK_SUCCEEDED);
    tsr_tasks_stats_t st;
    tsr_tasks_stats(t, &st);
    assert_int_equal(st.submitted, N + 1);
    assert_int_equal(st.succeeded, N + 1);
    assert_true(st.bytes_per_task <= 256);
    tsr_tasks_destroy(t);
}

/* Tasks append their number to a shared log, so order can be checked. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int order[4096], norder;

static int record(tsr_task_ctx_t *ctx, const void *arg, size_t len)
{
    (void)ctx;
    int v = 0;
    memcpy(&v, arg, len < sizeof v ? len : sizeof v);
    pthread_mutex_lock(&log_mu);
    order[norder++] = v;
    pthread_mutex_unlock(&log_mu);
    return v < 0 ? 1 : 0; /* negative numbers fail */
}

static int pos(int v)
{
    for (int i = 0; i < norder; i++)
        if (order[i] == v)
            return i;
    return -1;
}

static tsr_task_id_t sub(tsr_tasks_t *t, int v, const tsr_task_opts_t *o)
{
    tsr_task_id_t id = 0;
    assert_int_equal(tsr_tasks_submit(t, record, &v, sizeof v, o, &id), TSR_OK);
    return id;
}

static void test_dependencies(void **state)
{
    (void)state;
    tsr_tasks_t *t = farm(4);
    norder = 0;
    /* a diamond: 1 -> (2, 3) -> 4, and a chain 4 -> 5 */
    tsr_task_id_t a = sub(t, 1, NULL);
    tsr_task_opts_t o = {.after = &a, .nafter = 1};
    tsr_task_id_t b = sub(t, 2, &o), c = sub(t, 3, &o);
    tsr_task_id_t bc[2] = {b, c};
    tsr_task_opts_t o2 = {.after = bc, .nafter = 2};
    tsr_task_id_t d = sub(t, 4, &o2);
    tsr_task_opts_t o3 = {.after = &d, .nafter = 1};
    sub(t, 5, &o3);
    /* a failure skips what waits for it, transitively */
    tsr_task_id_t bad = sub(t, -1, NULL);
    tsr_task_opts_t ob = {.after = &bad, .nafter = 1};
    tsr_task_id_t s1 = sub(t, 10, &ob);
    tsr_task_opts_t os = {.after = &s1, .nafter = 1};
    tsr_task_id_t s2 = sub(t, 11, &os);
    assert_int_equal(tsr_tasks_wait_all(t), TSR_ETASKS);
    assert_true(pos(1) < pos(2) && pos(1) < pos(3));
    assert_true(pos(2) < pos(4) && pos(3) < pos(4) && pos(4) < pos(5));
    assert_int_equal(pos(10), -1);
    assert_int_equal(pos(11), -1);
    assert_int_equal(tsr_tasks_state(t, bad), TSR_TASK_FAILED);
    assert_int_equal(tsr_tasks_state(t, s1), TSR_TASK_SKIPPED);
    assert_int_equal(tsr_tasks_state(t, s2), TSR_TASK_SKIPPED);
    /* after tasks that already ended: a success runs it, a failure skips it */
    tsr_task_opts_t late = {.after = &a, .nafter = 1};
    tsr_task_id_t l1 = sub(t, 20, &late);
    late.after = &bad;
    tsr_task_id_t l2 = sub(t, 21, &late);
    tsr_task_state_t st;
    assert_int_equal(tsr_tasks_wait(t, l1, &st), TSR_OK);
    assert_int_equal(st, TSR_TASK_SUCCEEDED);
    assert_int_equal(tsr_tasks_wait(t, l2, &st), TSR_OK);
    assert_int_equal(st, TSR_TASK_SKIPPED);
    tsr_tasks_destroy(t);
}

/* A gate: the first task holds the only thread until released. */
static atomic_int gate_open;
static int gate_fn(tsr_task_ctx_t *ctx, const void *arg, size_t len)
{
    (void)ctx;
    (void)arg;
    (void)len;
    for (int i = 0; i < 20000 && !atomic_load(&gate_open); i++)
        usleep(500);
    return atomic_load(&gate_open) ? 0 : 1;
}

static void test_priorities(void **state)
{
    (void)state;
    tsr_tasks_t *t = farm(1);
    norder = 0;
    atomic_store(&gate_open, 0);
    tsr_task_id_t g;
    assert_int_equal(tsr_tasks_submit(t, gate_fn, NULL, 0, NULL, &g), TSR_OK);
    while (tsr_tasks_state(t, g) != TSR_TASK_RUNNING)
        usleep(100);
    /* queued behind the gate: 0..9 at priority 0, then 100..109 at 5, 200..209 at -3 */
    for (int i = 0; i < 10; i++) {
        tsr_task_opts_t lo = {.priority = 0}, hi = {.priority = 5}, neg = {.priority = -3};
        sub(t, i, &lo);
        sub(t, 100 + i, &hi);
        sub(t, 200 + i, &neg);
    }
    atomic_store(&gate_open, 1);
    assert_int_equal(tsr_tasks_wait_all(t), TSR_OK);
    assert_int_equal(norder, 30);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(order[i], 100 + i); /* highest first, in submission order */
        assert_int_equal(order[10 + i], i);
        assert_int_equal(order[20 + i], 200 + i);
    }
    tsr_tasks_destroy(t);
}

static atomic_int tries;
static int flaky(tsr_task_ctx_t *ctx, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    atomic_fetch_add(&tries, 1);
    return tsr_task_attempt(ctx) < 3 ? 7 : 0;
}

static void test_retries(void **state)
{
    (void)state;
    tsr_tasks_t *t = farm(2);
    atomic_store(&tries, 0);
    tsr_task_opts_t o = {.retries = 5, .backoff_s = 0.01, .backoff_factor = 2};
    tsr_task_id_t ok, never;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(tsr_tasks_submit(t, flaky, NULL, 0, &o, &ok), TSR_OK);
    int neg = -5;
    tsr_task_opts_t o2 = {.retries = 2};
    assert_int_equal(tsr_tasks_submit(t, record, &neg, sizeof neg, &o2, &never), TSR_OK);
    assert_int_equal(tsr_tasks_wait_all(t), TSR_ETASKS);
    clock_gettime(CLOCK_MONOTONIC, &b);
    int rc, attempts;
    assert_int_equal(tsr_tasks_result(t, ok, NULL, NULL, &rc, &attempts), TSR_OK);
    assert_int_equal(tsr_tasks_state(t, ok), TSR_TASK_SUCCEEDED);
    assert_int_equal(attempts, 3);
    assert_int_equal(rc, 0);
    assert_int_equal(atomic_load(&tries), 3);
    /* two backoffs of 10 and 20 ms passed before the third attempt */
    assert_true((double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec) >= 0.03);
    assert_int_equal(tsr_tasks_result(t, never, NULL, NULL, &rc, &attempts), TSR_OK);
    assert_int_equal(tsr_tasks_state(t, never), TSR_TASK_FAILED);
    assert_int_equal(attempts, 3);
    assert_int_equal(rc, 1);
    tsr_tasks_destroy(t);
}

static atomic_int saw_cancel;
static int cancellable(tsr_task_ctx_t *ctx, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    for (int i = 0; i < 20000; i++) {
        if (tsr_task_cancelled(ctx)) {
            atomic_store(&saw_cancel, 1);
            return 0;
        }
        usleep(500);
    }
    return 1;
}

static atomic_int callbacks[8];
static void done_cb(tsr_tasks_t *t, tsr_task_id_t id, tsr_task_state_t st, void *user)
{
    (void)t;
    (void)id;
    (void)user;
    atomic_fetch_add(&callbacks[st], 1);
}

static void test_cancel_and_callbacks(void **state)
{
    (void)state;
    tsr_tasks_t *t = farm(2);
    for (int i = 0; i < 8; i++)
        atomic_store(&callbacks[i], 0);
    atomic_store(&saw_cancel, 0);
    tsr_task_opts_t cb = {.on_done = done_cb};
    tsr_task_id_t run;
    assert_int_equal(tsr_tasks_submit(t, cancellable, NULL, 0, &cb, &run), TSR_OK);
    while (tsr_tasks_state(t, run) != TSR_TASK_RUNNING)
        usleep(100);
    /* waiting on the running one: cancelled, and so is what waits for it */
    tsr_task_opts_t w = {.after = &run, .nafter = 1, .on_done = done_cb};
    tsr_task_id_t waiting = sub(t, 50, &w);
    tsr_task_opts_t w2 = {.after = &waiting, .nafter = 1, .on_done = done_cb};
    tsr_task_id_t waiting2 = sub(t, 51, &w2);
    assert_int_equal(tsr_tasks_cancel(t, waiting), TSR_OK);
    assert_int_equal(tsr_tasks_state(t, waiting), TSR_TASK_CANCELLED);
    assert_int_equal(tsr_tasks_state(t, waiting2), TSR_TASK_SKIPPED);
    assert_int_equal(tsr_tasks_cancel(t, run), TSR_OK);
    tsr_task_state_t st;
    assert_int_equal(tsr_tasks_wait(t, run, &st), TSR_OK);
    assert_int_equal(st, TSR_TASK_CANCELLED);
    assert_int_equal(atomic_load(&saw_cancel), 1);
    assert_int_equal(tsr_tasks_wait_all(t), TSR_ETASKS);
    for (int i = 0; i < 100; i++)
        sub(t, 1000 + i, &cb);
    tsr_tasks_wait_all(t);
    assert_int_equal(atomic_load(&callbacks[TSR_TASK_CANCELLED]), 2);
    assert_int_equal(atomic_load(&callbacks[TSR_TASK_SKIPPED]), 1);
    assert_int_equal(atomic_load(&callbacks[TSR_TASK_SUCCEEDED]), 100);
    assert_int_equal(tsr_tasks_cancel(t, run), TSR_OK); /* a final task: nothing to do */
    tsr_tasks_destroy(t);
}

/* A tree: each task below depth 12 submits two children. */
static atomic_long leaves;
static int tree(tsr_task_ctx_t *ctx, const void *arg, size_t len)
{
    int depth;
    memcpy(&depth, arg, len);
    if (depth == 12) {
        atomic_fetch_add(&leaves, 1);
        return 0;
    }
    depth++;
    for (int i = 0; i < 2; i++)
        if (tsr_tasks_submit(tsr_task_farm(ctx), tree, &depth, sizeof depth, NULL, NULL) != TSR_OK)
            return 1;
    return 0;
}

/* The first of a batch waits for all the others: only stealing finishes them. */
static atomic_long small_done;
static int small(tsr_task_ctx_t *ctx, const void *arg, size_t len)
{
    (void)ctx;
    (void)arg;
    (void)len;
    atomic_fetch_add(&small_done, 1);
    return 0;
}
static int waits_for_all(tsr_task_ctx_t *ctx, const void *arg, size_t len)
{
    (void)ctx;
    (void)len;
    long n;
    memcpy(&n, arg, sizeof n);
    for (int i = 0; i < 40000 && atomic_load(&small_done) < n; i++)
        usleep(250);
    return atomic_load(&small_done) < n;
}

static void test_spawn_and_steal(void **state)
{
    (void)state;
    tsr_tasks_t *t = farm(4);
    int zero = 0;
    atomic_store(&leaves, 0);
    assert_int_equal(tsr_tasks_submit(t, tree, &zero, sizeof zero, NULL, NULL), TSR_OK);
    /* wait_all counts what was submitted when it was called; tasks keep
     * submitting, so wait until every leaf is there */
    while (atomic_load(&leaves) < 4096)
        assert_int_equal(tsr_tasks_wait_all(t), TSR_OK);
    tsr_tasks_stats_t s;
    tsr_tasks_stats(t, &s);
    assert_int_equal(s.submitted, 8191);
    /* warm the threads' task-time estimates so they take big batches */
    atomic_store(&small_done, 0);
    for (int i = 0; i < 20000; i++)
        tsr_tasks_submit(t, small, NULL, 0, NULL, NULL);
    tsr_tasks_wait_all(t);
    atomic_store(&small_done, 0);
    long n = 3000;
    tsr_task_opts_t first = {.priority = 1};
    tsr_task_id_t w;
    assert_int_equal(tsr_tasks_submit(t, waits_for_all, &n, sizeof n, &first, &w), TSR_OK);
    for (long i = 0; i < n; i++)
        tsr_tasks_submit(t, small, NULL, 0, NULL, NULL);
    assert_int_equal(tsr_tasks_wait_all(t), TSR_OK);
    assert_int_equal(tsr_tasks_state(t, w), TSR_TASK_SUCCEEDED);
    tsr_tasks_stats(t, &s);
    print_message("work stealing: %llu batches stolen\n", (unsigned long long)s.steals);
    tsr_tasks_destroy(t);
}

static void *submitter(void *arg)
{
    tsr_tasks_t *t = arg;
    for (long i = 0; i < 5000; i++)
        if (tsr_tasks_submit(t, square, &i, sizeof i, NULL, NULL) != TSR_OK)
            return (void *)1;
    return NULL;
}

static void test_threads_submit(void **state)
{
    (void)state;
    tsr_tasks_t *t = farm(2);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, submitter, t);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_null(r);
    }
    assert_int_equal(tsr_tasks_wait_all(t), TSR_OK);
    tsr_tasks_stats_t s;
    tsr_tasks_stats(t, &s);
    assert_int_equal(s.succeeded, 20000);
    tsr_tasks_destroy(t);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    tsr_tasks_t *t = farm(1);
    tsr_task_id_t id;
    assert_int_equal(tsr_tasks_submit(t, NULL, NULL, 0, NULL, &id), TSR_EINVAL);
    tsr_task_id_t ghost = 99;
    tsr_task_opts_t o = {.after = &ghost, .nafter = 1};
    assert_int_equal(tsr_tasks_submit(t, small, NULL, 0, &o, &id), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "99"));
    tsr_task_opts_t r = {.retries = -1};
    assert_int_equal(tsr_tasks_submit(t, small, NULL, 0, &r, &id), TSR_EINVAL);
    assert_int_equal(tsr_tasks_wait(t, 12345, NULL), TSR_EINVAL);
    assert_int_equal(tsr_tasks_state(t, 0), TSR_TASK_NSTATES);
    atomic_store(&gate_open, 0);
    assert_int_equal(tsr_tasks_submit(t, gate_fn, NULL, 0, NULL, &id), TSR_OK);
    assert_int_equal(tsr_tasks_result(t, id, NULL, NULL, NULL, NULL), TSR_EINVAL);
    atomic_store(&gate_open, 1);
    assert_int_equal(tsr_tasks_wait_all(t), TSR_OK);
    tsr_tasks_config_t cfg;
    tsr_tasks_config_default(&cfg);
    cfg.threads = -2;
    tsr_tasks_t *x = NULL;
    assert_int_equal(tsr_tasks_create(&cfg, &x), TSR_EINVAL);
    assert_int_equal(tsr_tasks_work(t), TSR_EINVAL);
    tsr_tasks_destroy(t);
    tsr_tasks_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results),
        cmocka_unit_test(test_dependencies),
        cmocka_unit_test(test_priorities),
        cmocka_unit_test(test_retries),
        cmocka_unit_test(test_cancel_and_callbacks),
        cmocka_unit_test(test_spawn_and_steal),
        cmocka_unit_test(test_threads_submit),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
