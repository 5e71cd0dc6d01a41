/* Unit tests of the checkpoint module: registering regions of every type,
 * writing synchronously and on the writer thread, verifying and restoring
 * (test_ckpt_write.c: big regions written around HDF5's metadata, CRC-32);
 * retention; when a checkpoint is due; restore refusing files that do not
 * fit (and leaving live memory alone); damaged files; the directory scan;
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

/* ---- restore refusing files that do not fit ---- */

/* Restore into a fresh engine whose regions hold a sentinel; it must fail
 * with code and leave every region exactly as it was. */
typedef int (*reg_fn)(tsr_ckpt_t *c, state_t *s, void *extra);

static void refuse(const char *path, reg_fn reg, int code, const char *what)
{
    state_t s, before;
    uint8_t extra[64];
    memset(&s, 0x5C, sizeof s);
    memset(extra, 0x3E, sizeof extra);
    before = s;
    tsr_ckpt_t *c = engine(tpath("refuse-engine"), 1, 1, NULL);
    assert_int_equal(reg(c, &s, extra), TSR_OK);
    tsr_ckpt_info_t info;
    info.config = (char *)"not touched";
    int rc = tsr_ckpt_restore(c, path, &info);
    if (rc != code)
        print_error("restore %s: expected %d, got %d: %s\n", path, code, rc, tsr_last_error());
    assert_int_equal(rc, code);
    assert_null(info.config); /* nothing to free after a failure */
    assert_non_null(strstr(tsr_last_error(), path));
    if (what && !strstr(tsr_last_error(), what))
        print_error("message lacks '%s': %s\n", what, tsr_last_error());
    if (what)
        assert_non_null(strstr(tsr_last_error(), what));
    assert_memory_equal(&s, &before, sizeof s);
    for (size_t i = 0; i < sizeof extra; i++)
        assert_int_equal(extra[i], 0x3E);
    tsr_ckpt_destroy(c);
}

static int reg_all(tsr_ckpt_t *c, state_t *s, void *extra)
{
    (void)extra;
    return register_state(c, s);
}

static int reg_transposed(tsr_ckpt_t *c, state_t *s, void *extra)
{
    (void)extra;
    size_t wd[2] = {W_COLS, W_ROWS}, vd[1] = {NV}, one[1] = {1}, bd[1] = {NB};
    int rc = tsr_ckpt_register(c, "/optimizer/v", s->v, TSR_CKPT_FLOAT64, 1, vd);
    rc = rc ? rc : tsr_ckpt_register(c, "/optimizer/steps", &s->step, TSR_CKPT_INT64, 1, one);
    rc = rc ? rc : tsr_ckpt_register(c, "/data/bytes", s->b, TSR_CKPT_UINT8, 1, bd);
    /* registered last, so the others were already read into snapshots */
    return rc ? rc : tsr_ckpt_register(c, "/model/layer_0/weight", s->w, TSR_CKPT_FLOAT32, 2, wd);
}

static int reg_flat(tsr_ckpt_t *c, state_t *s, void *extra)
{
    (void)extra;
    size_t wd[1] = {W_ROWS * W_COLS}, vd[1] = {NV}, one[1] = {1}, bd[1] = {NB};
    int rc = tsr_ckpt_register(c, "/optimizer/v", s->v, TSR_CKPT_FLOAT64, 1, vd);
    rc = rc ? rc : tsr_ckpt_register(c, "/optimizer/steps", &s->step, TSR_CKPT_INT64, 1, one);
    rc = rc ? rc : tsr_ckpt_register(c, "/data/bytes", s->b, TSR_CKPT_UINT8, 1, bd);
    return rc ? rc : tsr_ckpt_register(c, "/model/layer_0/weight", s->w, TSR_CKPT_FLOAT32, 1, wd);
}

static int reg_wrong_type(tsr_ckpt_t *c, state_t *s, void *extra)
{
    (void)extra;
    size_t wd[2] = {W_ROWS, W_COLS}, vd[1] = {NV}, one[1] = {1}, bd[1] = {NB};
    int rc = tsr_ckpt_register(c, "/model/layer_0/weight", s->w, TSR_CKPT_FLOAT32, 2, wd);
    rc = rc ? rc : tsr_ckpt_register(c, "/optimizer/v", s->v, TSR_CKPT_FLOAT64, 1, vd);
    rc = rc ? rc : tsr_ckpt_register(c, "/data/bytes", s->b, TSR_CKPT_UINT8, 1, bd);
    /* int64 in the file, float64 here: same size, other type */
    return rc ? rc : tsr_ckpt_register(c, "/optimizer/steps", &s->step, TSR_CKPT_FLOAT64, 1, one);
}

static int reg_wrong_length(tsr_ckpt_t *c, state_t *s, void *extra)
{
    (void)extra;
    size_t wd[2] = {W_ROWS, W_COLS}, vd[1] = {NV - 1}, one[1] = {1}, bd[1] = {NB};
    int rc = tsr_ckpt_register(c, "/model/layer_0/weight", s->w, TSR_CKPT_FLOAT32, 2, wd);
    rc = rc ? rc : tsr_ckpt_register(c, "/optimizer/steps", &s->step, TSR_CKPT_INT64, 1, one);
    rc = rc ? rc : tsr_ckpt_register(c, "/data/bytes", s->b, TSR_CKPT_UINT8, 1, bd);
    return rc ? rc : tsr_ckpt_register(c, "/optimizer/v", s->v, TSR_CKPT_FLOAT64, 1, vd);
}

static int reg_missing(tsr_ckpt_t *c, state_t *s, void *extra)
{
    size_t n = 64;
    int rc = register_state(c, s);
    return rc ? rc : tsr_ckpt_register(c, "/not/in/the/file", extra, TSR_CKPT_UINT8, 1, &n);
}

static void test_restore_refuses_mismatch(void **state)
{
    (void)state;
    const char *dir = tpath("mismatch");
    write_one(dir, 7, 4, 1);
    const char *f = ckpt_file(dir, 7);
    refuse(f, reg_transposed, TSR_EDATA, "/model/layer_0/weight");
    refuse(f, reg_flat, TSR_EDATA, "/model/layer_0/weight");
    refuse(f, reg_wrong_type, TSR_EDATA, "/optimizer/steps");
    refuse(f, reg_wrong_length, TSR_EDATA, "/optimizer/v");
    refuse(f, reg_missing, TSR_EDATA, "/not/in/the/file");
    refuse(tpath("mismatch/ckpt-0000000099.h5"), reg_all, TSR_EDATA, "no such file");
    /* The sound file restores with the right registration after all that. */
    state_t s, want;
    fill_state(&want, 4);
    memset(&s, 0, sizeof s);
    tsr_ckpt_t *c = engine(tpath("refuse-engine"), 1, 0, &s);
    assert_int_equal(tsr_ckpt_restore(c, f, NULL), TSR_OK);
    assert_memory_equal(&s, &want, sizeof s);
    tsr_ckpt_destroy(c);
}

/* A file may hold datasets this run does not register: they are verified
 * (checksum) but not loaded. */
static void test_restore_subset(void **state)
{
    (void)state;
    const char *dir = tpath("subset");
    write_one(dir, 8, 5, 1);
    state_t s, want;
    fill_state(&want, 5);
    memset(&s, 0, sizeof s);
    tsr_ckpt_t *c = engine(dir, 1, 0, NULL);
    size_t vd[1] = {NV};
    assert_int_equal(tsr_ckpt_register(c, "/optimizer/v", s.v, TSR_CKPT_FLOAT64, 1, vd), TSR_OK);
    assert_int_equal(tsr_ckpt_restore(c, ckpt_file(dir, 8), NULL), TSR_OK);
    assert_memory_equal(s.v, want.v, sizeof s.v);
    assert_true(s.step == 0);
    tsr_ckpt_destroy(c);
}

/* ---- damaged files ---- */

/* The offset of the middle of the longest run of 0xA5 bytes in path. */
static long pattern_middle(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    long pos = 0, run = 0, best = 0, best_end = -1;
    int ch;
    while ((ch = fgetc(f)) != EOF) {
        run = ch == 0xA5 ? run + 1 : 0;
        if (run > best) {
            best = run;
            best_end = pos;
        }
        pos++;
    }
    fclose(f);
    assert_true(best >= NB); /* the uint8 region is stored contiguously */
    return best_end - best / 2;
}

static void flip_byte(const char *path, long off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char b;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x10;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static void set_long_attr(const char *path, const char *name, int64_t v)
{
    tsr_h5_lock();
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = f >= 0 ? H5Aopen(f, name, H5P_DEFAULT) : -1;
    herr_t w = a >= 0 ? H5Awrite(a, H5T_NATIVE_INT64, &v) : -1;
    if (a >= 0)
        H5Aclose(a);
    herr_t cl = f >= 0 ? H5Fclose(f) : -1;
    tsr_h5_unlock();
    assert_true(f >= 0);
    assert_true(a >= 0);
    assert_true(w >= 0);
    assert_true(cl >= 0);
}

static void set_str_attr(const char *path, const char *name, const char *v)
{
    tsr_h5_lock();
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    int ok = f >= 0 && H5Adelete(f, name) >= 0;
    hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate(H5S_SCALAR), a = -1;
    ok = ok && H5Tset_size(t, strlen(v) + 1) >= 0;
    if (ok)
        a = H5Acreate2(f, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    ok = ok && a >= 0 && H5Awrite(a, t, v) >= 0;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
    if (f >= 0 && H5Fclose(f) < 0)
        ok = 0;
    tsr_h5_unlock();
    assert_true(ok);
}

static void delete_dataset(const char *path, const char *name)
{
    tsr_h5_lock();
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    int ok = f >= 0 && H5Ldelete(f, name, H5P_DEFAULT) >= 0;
    if (f >= 0 && H5Fclose(f) < 0)
        ok = 0;
    tsr_h5_unlock();
    assert_true(ok);
}

/* verify and restore both refuse path with TSR_EDATA, naming the file and,
 * if given, the reason. */
static void damaged(const char *path, const char *why)
{
    tsr_ckpt_info_t info;
    int rc = tsr_ckpt_verify(path, &info);
    if (rc != TSR_EDATA || !strstr(tsr_last_error(), path) || (why && !strstr(tsr_last_error(), why)))
        print_error("verify %s: rc %d: %s\n", path, rc, tsr_last_error());
    assert_int_equal(rc, TSR_EDATA);
    assert_non_null(strstr(tsr_last_error(), path));
    if (why)
        assert_non_null(strstr(tsr_last_error(), why));
    assert_null(info.config);
    assert_null(info.model);
    refuse(path, reg_all, TSR_EDATA, why);
}

static void test_damaged_files_refused(void **state)
{
    (void)state;
    const char *dir = tpath("damaged");
    write_one(dir, 5, 6, 1);
    const char *good = ckpt_file(dir, 5);
    assert_int_equal(tsr_ckpt_verify(good, NULL), TSR_OK);
    struct stat st;
    assert_int_equal(stat(good, &st), 0);

    const char *trunc = tpath("damaged/trunc.h5");
    copy_file(good, trunc, st.st_size / 2);
    damaged(trunc, NULL);

    const char *trunc_tail = tpath("damaged/trunc-tail.h5");
    copy_file(good, trunc_tail, st.st_size - 16);
    damaged(trunc_tail, NULL);

    const char *flip = tpath("damaged/flip.h5");
    copy_file(good, flip, -1);
    long off = pattern_middle(flip);
    assert_true(off > 0 && off < st.st_size);
    flip_byte(flip, off);
    damaged(flip, "checksum mismatch");

    const char *empty = tpath("damaged/empty.h5");
    write_text(empty, "");
    damaged(empty, "not an HDF5 file");

    const char *text = tpath("damaged/text.h5");
    write_text(text, "step = 5\nthis is not a checkpoint\n");
    damaged(text, "not an HDF5 file");

    const char *ver = tpath("damaged/version.h5");
    copy_file(good, ver, -1);
    set_long_attr(ver, "version", 99);
    damaged(ver, "version 99");

    const char *fmt = tpath("damaged/format.h5");
    copy_file(good, fmt, -1);
    set_str_attr(fmt, "format", "something-else");
    damaged(fmt, "something-else");

    const char *sum = tpath("damaged/sum.h5");
    copy_file(good, sum, -1);
    set_str_attr(sum, "checksum", "crc32:00000000");
    damaged(sum, "checksum mismatch");

    /* The checksum covers the root attributes: a flipped step, epoch or
     * world size is damage like a flipped byte of data. */
    const char *step = tpath("damaged/step.h5");
    copy_file(good, step, -1);
    set_long_attr(step, "step", 7);
    damaged(step, "checksum mismatch");
    const char *world = tpath("damaged/world.h5");
    copy_file(good, world, -1);
    set_long_attr(world, "world_size", 64);
    damaged(world, "checksum mismatch");
    const char *conf = tpath("damaged/config.h5");
    copy_file(good, conf, -1);
    set_str_attr(conf, "config", "[train]\nepochs = 1\n");
    damaged(conf, "checksum mismatch");

    const char *gone = tpath("damaged/gone.h5");
    copy_file(good, gone, -1);
    delete_dataset(gone, "/optimizer/v");
    damaged(gone, "/optimizer/v");

    /* The source file was never touched and still restores. */
    assert_int_equal(tsr_ckpt_verify(good, NULL), TSR_OK);
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
        cmocka_unit_test(test_restore_refuses_mismatch),
        cmocka_unit_test(test_restore_subset),
        cmocka_unit_test(test_damaged_files_refused),
        cmocka_unit_test(test_scan_newest_first),
        cmocka_unit_test(test_clean_stale),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_bad_registration),
    };
    return cmocka_run_group_tests_name("ckpt", tests, setup_dir, teardown_dir);
}
