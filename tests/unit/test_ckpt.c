/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the checkpoint module: registering regions of every type,
 * writing synchronously and on the writer thread, verifying and restoring
 * (test_ckpt_write.c: big regions written around HDF5's metadata, CRC-32;
 * test_ckpt_restore.c: restore refusing files that do not fit, damaged
 * files); retention; when a checkpoint is due; the directory scan;
 * cleaning up temporaries of dead writers; bad registrations. Files live in
 * $TSR_TEST_TMP/ckpt.<pid>. Every raw HDF5 call here holds tsr_h5_lock(),
 * since the library's writer thread may be running. */
#include "ckpt_test_util.h"

static void roundtrip(int async, int sync)
{
    const char *dir = tpath(async ? (sync ? "rt-async-sync" : "rt-async") : "rt-sync");
    state_t s, want, zero;
    fill_state(&s, 1);
    want = s;
    tsr_ckpt_t *c = engine(dir, 3, async, &s);
    assert_int_equal(tsr_ckpt_bytes(c), STATE_BYTES);
    assert_int_equal(tsr_ckpt_last_step(c), -1);
    assert_string_equal(tsr_ckpt_last_path(c), "");

    tsr_ckpt_meta_t m = meta_at(10);
    assert_int_equal(tsr_ckpt_write(c, &m, sync), TSR_OK);
    /* The write works from its snapshot: changing live memory at once must
     * not reach the file. */
    fill_state(&s, 2);
    assert_int_equal(tsr_ckpt_wait(c), TSR_OK);
    assert_int_equal(tsr_ckpt_busy(c), 0);
    assert_int_equal(tsr_ckpt_last_step(c), 10);
    assert_string_equal(tsr_ckpt_last_path(c), ckpt_file(dir, 10));
    assert_true(tsr_ckpt_last_write_seconds(c) >= 0.0);
    assert_int_equal(count_entries(dir, ".ckpt-"), 0); /* no temporary left */

    tsr_ckpt_info_t info;
    assert_int_equal(tsr_ckpt_verify(ckpt_file(dir, 10), &info), TSR_OK);
    check_info(&info, 10);
    tsr_ckpt_info_free(&info);

    /* Restore into zeroed memory. */
    memset(&s, 0, sizeof s);
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(&s, &zero, sizeof s);
    assert_int_equal(tsr_ckpt_restore(c, ckpt_file(dir, 10), &info), TSR_OK);
    check_info(&info, 10);
    tsr_ckpt_info_free(&info);
    assert_memory_equal(s.w, want.w, sizeof s.w);
    assert_memory_equal(s.v, want.v, sizeof s.v);
    assert_true(s.step == want.step);
    assert_memory_equal(s.b, want.b, sizeof s.b);

    /* info may be NULL. */
    memset(&s, 0, sizeof s);
    assert_int_equal(tsr_ckpt_restore(c, ckpt_file(dir, 10), NULL), TSR_OK);
    assert_memory_equal(&s, &want, sizeof s);
    tsr_ckpt_destroy(c);

    /* Another engine (a restarted process) restores it too. */
    memset(&s, 0, sizeof s);
    c = engine(dir, 3, !async, &s);
    assert_int_equal(tsr_ckpt_restore(c, ckpt_file(dir, 10), NULL), TSR_OK);
    assert_memory_equal(&s, &want, sizeof s);
    tsr_ckpt_destroy(c);
}

static void test_roundtrip_sync(void **state)
{
    (void)state;
    roundtrip(0, 1);
}

static void test_roundtrip_async(void **state)
{
    (void)state;
    roundtrip(1, 0);
}

static void test_roundtrip_async_engine_sync_write(void **state)
{
    (void)state;
    roundtrip(1, 1);
}

/* Writes in quick succession on the writer thread, each of a different
 * state, then destroy with one still in flight: every file holds the state
 * of its own step, and destroy waits for the last one. */
static void test_async_back_to_back(void **state)
{
    (void)state;
    const char *dir = tpath("async-b2b");
    enum { N = 2 << 20 }; /* 8 MiB of float32, so writes take a moment */
    float *big = malloc(N * sizeof *big);
    assert_non_null(big);
    tsr_ckpt_config_t cfg = {.dir = dir, .keep = 10, .async = 1};
    tsr_ckpt_t *c;
    assert_int_equal(tsr_ckpt_create(&cfg, &c), TSR_OK);
    size_t n = N;
    assert_int_equal(tsr_ckpt_register(c, "/big", big, TSR_CKPT_FLOAT32, 1, &n), TSR_OK);
    for (long step = 1; step <= 4; step++) {
        for (size_t i = 0; i < N; i++)
            big[i] = (float)(step * 1000000 + (long)i % 1000);
        tsr_ckpt_meta_t m = meta_at(step);
        assert_int_equal(tsr_ckpt_write(c, &m, 0), TSR_OK);
        /* Scribble over the live buffer while the writer works. */
        for (size_t i = 0; i < N; i += 1024)
            big[i] = -1.0f;
    }
    tsr_ckpt_destroy(c); /* waits for step 4 */
    assert_int_equal(count_entries(dir, "ckpt-"), 4);
    assert_int_equal(count_entries(dir, ".ckpt-"), 0);
    assert_int_equal(tsr_ckpt_create(&cfg, &c), TSR_OK);
    assert_int_equal(tsr_ckpt_register(c, "/big", big, TSR_CKPT_FLOAT32, 1, &n), TSR_OK);
    for (long step = 1; step <= 4; step++) {
        memset(big, 0, N * sizeof *big);
        assert_int_equal(tsr_ckpt_restore(c, ckpt_file(dir, step), NULL), TSR_OK);
        for (size_t i = 0; i < N; i += 4099)
            assert_true(big[i] == (float)(step * 1000000 + (long)i % 1000));
    }
    tsr_ckpt_destroy(c);
    free(big);
}

/* ---- retention ---- */

static void test_retention_keeps_newest(void **state)
{
    (void)state;
    const char *dir = tpath("retain");
    state_t s;
    fill_state(&s, 0);
    for (int async = 0; async <= 1; async++) {
        tsr_ckpt_t *c = engine(dir, 2, async, &s);
        for (long step = 1 + async * 5; step <= 5 + async * 5; step++) {
            s.step = step;
            tsr_ckpt_meta_t m = meta_at(step);
            assert_int_equal(tsr_ckpt_write(c, &m, 0), TSR_OK);
        }
        assert_int_equal(tsr_ckpt_wait(c), TSR_OK);
        tsr_ckpt_destroy(c);
        long newest = 5 + async * 5;
        assert_int_equal(count_entries(dir, "ckpt-"), 2);
        assert_int_equal(count_entries(dir, ".ckpt-"), 0);
        assert_true(exists(ckpt_file(dir, newest)));
        assert_true(exists(ckpt_file(dir, newest - 1)));
        assert_int_equal(tsr_ckpt_verify(ckpt_file(dir, newest), NULL), TSR_OK);
        assert_int_equal(tsr_ckpt_verify(ckpt_file(dir, newest - 1), NULL), TSR_OK);
    }
}

/* A write that fails (at rename, or in the middle of writing the data)
 * removes nothing older and leaves no temporary file. */
static void test_failed_write_keeps_older(void **state)
{
    (void)state;
    const char *dir = tpath("retain-fail");
    state_t s;
    fill_state(&s, 3);
    for (int async = 0; async <= 1; async++) {
        tsr_ckpt_t *c = engine(dir, 2, async, &s);
        long base = async * 100;
        for (long step = base + 1; step <= base + 2; step++) {
            tsr_ckpt_meta_t m = meta_at(step);
            assert_int_equal(tsr_ckpt_write(c, &m, 1), TSR_OK);
        }
        /* Retention of that write done (it follows the commit on the writer
         * thread), before a directory named like a newer checkpoint appears. */
        assert_int_equal(tsr_ckpt_wait(c), TSR_OK);
        /* (a) The final name is taken by a directory: refused as not a
         * regular file (never replaced), TSR_EINVAL. */
        assert_int_equal(mkdir(ckpt_file(dir, base + 3), 0755), 0);
        tsr_ckpt_meta_t m = meta_at(base + 3);
        int rc = tsr_ckpt_write(c, &m, 0);
        if (rc == TSR_OK)
            rc = tsr_ckpt_wait(c);
        assert_int_equal(rc, TSR_EINVAL);
        assert_non_null(strstr(tsr_last_error(), ckpt_file(dir, base + 3)));
        assert_non_null(strstr(tsr_last_error(), "previous checkpoint is untouched"));
        assert_int_equal(rmdir(ckpt_file(dir, base + 3)), 0);
        assert_int_equal(tsr_ckpt_last_step(c), base + 2);

        /* (b) The file size limit cuts the write short (like a full disk). */
        struct rlimit old, lim;
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
        lim = old;
        lim.rlim_cur = 2048;
        void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
        m = meta_at(base + 4);
        rc = tsr_ckpt_write(c, &m, 0);
        if (rc == TSR_OK)
            rc = tsr_ckpt_wait(c);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
        signal(SIGXFSZ, prev);
        assert_int_equal(rc, TSR_EIO);
        assert_non_null(strstr(tsr_last_error(), ckpt_file(dir, base + 4)));

        assert_false(exists(ckpt_file(dir, base + 4)));
        assert_true(exists(ckpt_file(dir, base + 1)));
        assert_true(exists(ckpt_file(dir, base + 2)));
        assert_int_equal(tsr_ckpt_verify(ckpt_file(dir, base + 1), NULL), TSR_OK);
        assert_int_equal(tsr_ckpt_verify(ckpt_file(dir, base + 2), NULL), TSR_OK);
        assert_int_equal(count_entries(dir, ".ckpt-"), 0);
        assert_int_equal(tsr_ckpt_last_step(c), base + 2);

        /* The engine still works afterwards, and retention resumes (a
         * synchronous write on the writer thread returns at the commit;
         * retention follows, and wait waits for it). */
        m = meta_at(base + 5);
        assert_int_equal(tsr_ckpt_write(c, &m, 1), TSR_OK);
        assert_true(exists(ckpt_file(dir, base + 5)));
        assert_int_equal(tsr_ckpt_wait(c), TSR_OK);
        assert_false(exists(ckpt_file(dir, base + 1)));
        assert_true(exists(ckpt_file(dir, base + 2)));
        assert_true(exists(ckpt_file(dir, base + 5)));
        tsr_ckpt_destroy(c);
        /* Clear the way for the async round. */
        unlink(ckpt_file(dir, base + 2));
        unlink(ckpt_file(dir, base + 5));
    }
}

/* ---- due ---- */

static void test_due_by_steps(void **state)
{
    (void)state;
    state_t s;
    fill_state(&s, 0);
    tsr_ckpt_config_t cfg = {.dir = tpath("due-steps"), .keep = 1, .every_steps = 10};
    tsr_ckpt_t *c;
    assert_int_equal(tsr_ckpt_create(&cfg, &c), TSR_OK);
    assert_int_equal(register_state(c, &s), TSR_OK);
    assert_int_equal(tsr_ckpt_due(c, 1), 0);
    assert_int_equal(tsr_ckpt_due(c, 9), 0);
    assert_int_equal(tsr_ckpt_due(c, 10), 1);
    assert_int_equal(tsr_ckpt_due(c, 11), 1);
    tsr_ckpt_meta_t m = meta_at(12);
    assert_int_equal(tsr_ckpt_write(c, &m, 1), TSR_OK);
    assert_int_equal(tsr_ckpt_due(c, 13), 0);
    assert_int_equal(tsr_ckpt_due(c, 21), 0);
    assert_int_equal(tsr_ckpt_due(c, 22), 1);
    tsr_ckpt_destroy(c);

    /* Neither steps nor seconds: never due. */
    tsr_ckpt_config_t never = {.dir = tpath("due-never"), .keep = 1};
    assert_int_equal(tsr_ckpt_create(&never, &c), TSR_OK);
    assert_int_equal(tsr_ckpt_due(c, 1), 0);
    assert_int_equal(tsr_ckpt_due(c, 1000000), 0);
    tsr_ckpt_destroy(c);
}

static void sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void test_due_by_seconds(void **state)
{
    (void)state;
    state_t s;
    fill_state(&s, 0);
    /* The "not yet" checks are skipped if this process was stalled past the
     * interval (a loaded machine), never the "due" ones. */
    tsr_ckpt_config_t cfg = {.dir = tpath("due-seconds"), .keep = 1, .every_seconds = 0.5};
    tsr_ckpt_t *c;
    double t0 = tsr_time_now();
    assert_int_equal(tsr_ckpt_create(&cfg, &c), TSR_OK);
    assert_int_equal(register_state(c, &s), TSR_OK);
    int due = tsr_ckpt_due(c, 1000); /* the clock starts at create */
    if (tsr_time_now() - t0 < 0.45)
        assert_int_equal(due, 0);
    sleep_s(0.6);
    assert_int_equal(tsr_ckpt_due(c, 1), 1);
    tsr_ckpt_meta_t m = meta_at(1);
    assert_int_equal(tsr_ckpt_write(c, &m, 1), TSR_OK);
    t0 = tsr_time_now();
    due = tsr_ckpt_due(c, 2); /* and restarts when a write starts */
    if (tsr_time_now() - t0 < 0.45 && tsr_ckpt_last_write_seconds(c) < 0.45)
        assert_int_equal(due, 0);
    sleep_s(0.6);
    assert_int_equal(tsr_ckpt_due(c, 2), 1);
    tsr_ckpt_destroy(c);
}

/* ---- directory scan ---- */

typedef struct {
    int n;
    long steps[16];
    int rcs[16];
    char names[16][64];
    int stop_after_ok;
} seen_t;

static int visit(const char *path, int rc, const tsr_ckpt_info_t *info, void *arg)
{
    seen_t *v = arg;
    assert_true(v->n < 16);
    const char *slash = strrchr(path, '/');
    snprintf(v->names[v->n], sizeof v->names[0], "%s", slash ? slash + 1 : path);
    v->rcs[v->n] = rc;
    if (rc == TSR_OK) {
        assert_non_null(info);
        v->steps[v->n] = info->step;
    } else {
        assert_null(info);
        assert_non_null(strstr(tsr_last_error(), path));
        v->steps[v->n] = -1;
    }
    v->n++;
    return v->stop_after_ok && rc == TSR_OK;
}

static void test_scan_newest_first(void **state)
{
    (void)state;
    const char *dir = tpath("scan");
    /* Written out of order; the scan orders by step, not by time. */
    write_one(dir, 3, 1, 100);
    write_one(dir, 120, 2, 100);
    write_one(dir, 7, 3, 100);
    write_one(dir, 12, 4, 100);
    write_text(tpath("scan/ckpt-0000000200.h5"), "damaged");
    write_text(tpath("scan/ckpt-abc.h5"), "ignored");
    write_text(tpath("scan/other.h5"), "ignored");
    write_text(tpath("scan/ckpt-0000000300.h5.bak"), "ignored");
    write_text(tpath("scan/.ckpt-0000000400.h5.tmp.12345"), "ignored");

    seen_t v = {0};
    assert_int_equal(tsr_ckpt_scan(dir, visit, &v), 5);
    assert_int_equal(v.n, 5);
    assert_string_equal(v.names[0], "ckpt-0000000200.h5");
    assert_int_equal(v.rcs[0], TSR_EDATA);
    long want[] = {-1, 120, 12, 7, 3};
    for (int i = 0; i < 5; i++)
        assert_int_equal(v.steps[i], want[i]);
    for (int i = 1; i < 5; i++)
        assert_int_equal(v.rcs[i], TSR_OK);

    /* Returning non-zero stops the walk: the newest that verifies. */
    seen_t first = {.stop_after_ok = 1};
    assert_int_equal(tsr_ckpt_scan(dir, visit, &first), 2);
    assert_int_equal(first.steps[1], 120);

    /* A missing directory has no checkpoints. */
    seen_t none = {0};
    assert_int_equal(tsr_ckpt_scan(tpath("scan/no-such-dir"), visit, &none), 0);
    assert_int_equal(none.n, 0);
}

/* ---- stale temporaries ---- */

static long dead_pid(void)
{
    for (long pid = 999999999L; pid > 4000000L; pid -= 7919) {
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            return pid;
    }
    fail_msg("no unused pid found");
    return -1;
}

static void test_clean_stale(void **state)
{
    (void)state;
    const char *dir = tpath("stale");
    write_one(dir, 1, 1, 5);
    long dead = dead_pid();
    long live = (long)getppid();
    assert_int_equal(kill((pid_t)live, 0), 0);
    char dead_tmp[64], live_tmp[64], other_tmp[64];
    snprintf(dead_tmp, sizeof dead_tmp, "stale/.ckpt-0000000002.h5.tmp.%ld", dead);
    snprintf(live_tmp, sizeof live_tmp, "stale/.ckpt-0000000003.h5.tmp.%ld", live);
    snprintf(other_tmp, sizeof other_tmp, "stale/.model.h5.tmp.%ld", dead);
    write_text(tpath(dead_tmp), "half a file");
    write_text(tpath(live_tmp), "a live writer's file");
    write_text(tpath(other_tmp), "not a checkpoint temporary");

    assert_int_equal(tsr_ckpt_clean_stale(dir), 1);
    assert_false(exists(tpath(dead_tmp)));
    assert_true(exists(tpath(live_tmp)));
    assert_true(exists(tpath(other_tmp)));
    assert_true(exists(ckpt_file(dir, 1)));
    assert_int_equal(tsr_ckpt_verify(ckpt_file(dir, 1), NULL), TSR_OK);
    /* Nothing more to do a second time; a missing directory is no error. */
    assert_int_equal(tsr_ckpt_clean_stale(dir), 0);
    assert_int_equal(tsr_ckpt_clean_stale(tpath("stale/no-such-dir")), 0);
}

/* ---- bad arguments ---- */

static void test_bad_config(void **state)
{
    (void)state;
    tsr_ckpt_t *c = NULL;
    tsr_ckpt_config_t no_dir = {.dir = NULL, .keep = 1};
    assert_int_equal(tsr_ckpt_create(&no_dir, &c), TSR_EINVAL);
    tsr_ckpt_config_t empty_dir = {.dir = "", .keep = 1};
    assert_int_equal(tsr_ckpt_create(&empty_dir, &c), TSR_EINVAL);
    tsr_ckpt_config_t keep0 = {.dir = tpath("bad"), .keep = 0};
    assert_int_equal(tsr_ckpt_create(&keep0, &c), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "keep"));
    assert_null(c);
    tsr_ckpt_destroy(NULL);

    /* The directory cannot be created: a regular file is in the way. */
    write_text(tpath("in-the-way"), "a file");
    state_t s;
    fill_state(&s, 0);
    c = engine(tpath("in-the-way/sub"), 1, 0, &s);
    tsr_ckpt_meta_t m = meta_at(1);
    assert_int_equal(tsr_ckpt_write(c, &m, 1), TSR_EIO);
    assert_non_null(strstr(tsr_last_error(), "in-the-way"));
    tsr_ckpt_destroy(c);
}

static void test_bad_registration(void **state)
{
    (void)state;
    float x[4] = {0};
    size_t d1[1] = {4}, d5[5] = {1, 1, 1, 1, 4};
    tsr_ckpt_t *c = engine(tpath("badreg"), 1, 1, NULL);
    assert_int_equal(tsr_ckpt_register(c, "/ok", x, TSR_CKPT_FLOAT32, 1, d1), TSR_OK);
    size_t bytes = tsr_ckpt_bytes(c);
    assert_int_equal(bytes, sizeof x);

    assert_int_equal(tsr_ckpt_register(c, NULL, x, TSR_CKPT_FLOAT32, 1, d1), TSR_EINVAL);
    assert_int_equal(tsr_ckpt_register(c, "", x, TSR_CKPT_FLOAT32, 1, d1), TSR_EINVAL);
    assert_int_equal(tsr_ckpt_register(c, "no/slash", x, TSR_CKPT_FLOAT32, 1, d1), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "no/slash"));
    assert_int_equal(tsr_ckpt_register(c, "/ok", x, TSR_CKPT_FLOAT32, 1, d1), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "twice"));
    assert_int_equal(tsr_ckpt_register(c, "/zero-dims", x, TSR_CKPT_FLOAT32, 0, d1), TSR_EINVAL);
    assert_int_equal(tsr_ckpt_register(c, "/neg-dims", x, TSR_CKPT_FLOAT32, -1, d1), TSR_EINVAL);
    assert_int_equal(tsr_ckpt_register(c, "/five-dims", x, TSR_CKPT_FLOAT32, 5, d5), TSR_EINVAL);
    assert_int_equal(tsr_ckpt_register(c, "/bad-type", x, (tsr_ckpt_type_t)17, 1, d1), TSR_EINVAL);
    assert_int_equal(tsr_ckpt_register(c, "/no-memory", NULL, TSR_CKPT_FLOAT32, 1, d1), TSR_EINVAL);
    char long_path[300];
    memset(long_path, 'a', sizeof long_path);
    long_path[0] = '/';
    long_path[sizeof long_path - 1] = '\0';
    assert_int_equal(tsr_ckpt_register(c, long_path, x, TSR_CKPT_FLOAT32, 1, d1), TSR_EINVAL);
    assert_int_equal(tsr_ckpt_bytes(c), bytes); /* nothing half-registered */

    /* The engine still writes exactly the one good region. */
    tsr_ckpt_meta_t m = meta_at(1);
    assert_int_equal(tsr_ckpt_write(c, &m, 1), TSR_OK);
    tsr_ckpt_info_t info;
    assert_int_equal(tsr_ckpt_verify(tsr_ckpt_last_path(c), &info), TSR_OK);
    assert_int_equal(info.ndatasets, 1);
    assert_int_equal(info.bytes, sizeof x);
    tsr_ckpt_info_free(&info);
    tsr_ckpt_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_sync),
        cmocka_unit_test(test_roundtrip_async),
        cmocka_unit_test(test_roundtrip_async_engine_sync_write),
        cmocka_unit_test(test_async_back_to_back),
        cmocka_unit_test(test_retention_keeps_newest),
        cmocka_unit_test(test_failed_write_keeps_older),
        cmocka_unit_test(test_due_by_steps),
        cmocka_unit_test(test_due_by_seconds),
        cmocka_unit_test(test_scan_newest_first),
        cmocka_unit_test(test_clean_stale),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_bad_registration),
    };
    return cmocka_run_group_tests_name("ckpt", tests, setup_dir, teardown_dir);
}
