/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of checkpoint restore: files that do not fit the registered
 * regions (another layout, type, length, a missing region) are refused and
 * leave live memory exactly as it was; a subset restores; damaged files
 * (a flipped byte, wrong attributes, a missing dataset) are refused naming
 * what is wrong. Shares its helpers with test_ckpt.c (ckpt_test_util.h). */
#include "ckpt_test_util.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restore_refuses_mismatch),
        cmocka_unit_test(test_restore_subset),
        cmocka_unit_test(test_damaged_files_refused),
    };
    return cmocka_run_group_tests_name("ckpt_restore", tests, setup_dir, teardown_dir);
}
