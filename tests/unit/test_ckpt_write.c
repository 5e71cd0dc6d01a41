/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of checkpoint writing (src/ckpt/write.c): big regions that
 * tessera writes itself at HDF5's offsets, mixed with small ones, written
 * sync, async and sync on an async engine, then read back with HDF5 alone;
 * many regions; a write cut short failing cleanly; tsr_crc32 against
 * zlib. Shares its helpers with test_ckpt.c (ckpt_test_util.h). */
#include "ckpt_test_util.h"
#include "ckpt/internal.h"

/* ---- big regions: written by tessera around HDF5's metadata ---- */

/* tsr_crc32 gives zlib's values whatever the length, alignment and start. */
static void test_crc32_matches_zlib(void **state)
{
    (void)state;
    enum { LEN = 1 << 20 };
    unsigned char *b = malloc(LEN + 64);
    assert_non_null(b);
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < LEN + 64; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b[i] = (unsigned char)x;
    }
    for (int t = 0; t < 3000; t++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t off = x % 64, n = t < 1000 ? (size_t)t : t < 2900 ? (x >> 8) % 70000 : LEN - (x >> 8) % 64;
        uint32_t start = t % 3 ? 0 : (uint32_t)(x >> 32);
        uint32_t want = (uint32_t)crc32(start, b + off, (uInt)n);
        if (tsr_crc32(start, b + off, n) != want)
            fail_msg("crc32 differs at offset %zu length %zu start %08x", off, n, start);
    }
    /* In pieces as in one go. */
    uint32_t whole = tsr_crc32(0, b, LEN), parts = 0;
    for (size_t pos = 0, k = 1; pos < LEN; pos += k, k = k * 3 + 1)
        parts = tsr_crc32(parts, b + pos, k < LEN - pos ? k : LEN - pos);
    assert_true(whole == parts);
    assert_true(whole == (uint32_t)crc32(0, b, LEN));
    free(b);
}

#define NBIG 9

typedef struct {
    void *p[NBIG];
    size_t bytes[NBIG];
} big_t;

static const char *const big_names[NBIG] = {"/big/f32",   "/small/v", "/big/exact64k", "/i64", "/a/b/c/deep",
                                            "/small/one", "/big/odd", "/u8/empty",     "/last"};

static void fill_big(big_t *b, int salt)
{
    for (int i = 0; i < NBIG; i++) {
        unsigned char *q = b->p[i];
        for (size_t k = 0; k < b->bytes[i]; k++)
            q[k] = (unsigned char)(k * 31 + (size_t)i * 7 + (size_t)salt * 13 + (k >> 12));
    }
}

/* Regions of every size class: over and under the size tessera writes
 * itself, exactly at it, an odd length, an empty one; several groups. */
static tsr_ckpt_t *big_engine(const char *dir, int async, big_t *b)
{
    static const tsr_ckpt_type_t type[NBIG] = {TSR_CKPT_FLOAT32, TSR_CKPT_FLOAT64, TSR_CKPT_UINT8,
                                               TSR_CKPT_INT64,   TSR_CKPT_FLOAT32, TSR_CKPT_INT64,
                                               TSR_CKPT_UINT8,   TSR_CKPT_UINT8,   TSR_CKPT_FLOAT64};
    static const size_t count[NBIG] = {(1 << 20) + 3, 7, 65536, 100003, 4 * 40000, 1, 3 * 65537, 0, 20000};
    tsr_ckpt_t *c = engine(dir, 2, async, NULL);
    for (int i = 0; i < NBIG; i++) {
        size_t dims[2] = {count[i], 1};
        int nd = 1;
        if (i == 4) { /* a 2-D one */
            dims[0] = 4;
            dims[1] = count[i] / 4;
            nd = 2;
        }
        b->bytes[i] = count[i] * tsr_ckpt_type_size_for_test(type[i]);
        b->p[i] = malloc(b->bytes[i] + 1);
        assert_non_null(b->p[i]);
        assert_int_equal(tsr_ckpt_register(c, big_names[i], b->p[i], type[i], nd, dims), TSR_OK);
    }
    return c;
}

static void free_big(big_t *b)
{
    for (int i = 0; i < NBIG; i++)
        free(b->p[i]);
}

/* The file read with HDF5 alone: every dataset's bytes, the checksum as
 * zlib computes it, and no bytes beyond HDF5's end of file. */
static void check_big_file(const char *path, const big_t *want)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    tsr_h5_lock();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    for (int i = 0; i < NBIG; i++) {
        hid_t d = H5Dopen2(f, big_names[i], H5P_DEFAULT);
        assert_true(d >= 0);
        hid_t t = H5Dget_type(d);
        unsigned char *got = malloc(want->bytes[i] + 1);
        assert_non_null(got);
        assert_true(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, got) >= 0);
        if (memcmp(got, want->p[i], want->bytes[i]) != 0)
            fail_msg("%s: dataset %s differs", path, big_names[i]);
        crc = crc32(crc, got, (uInt)want->bytes[i]);
        free(got);
        H5Tclose(t);
        H5Dclose(d);
    }
    char sum[32], want_sum[32], list[1024];
    hid_t a = H5Aopen(f, "checksum", H5P_DEFAULT), t = H5Aget_type(a);
    assert_true(H5Tget_size(t) < sizeof sum);
    assert_true(H5Aread(a, t, sum) >= 0);
    H5Tclose(t);
    H5Aclose(a);
    a = H5Aopen(f, "checksum_datasets", H5P_DEFAULT), t = H5Aget_type(a);
    assert_true(H5Tget_size(t) < sizeof list);
    assert_true(H5Aread(a, t, list) >= 0);
    H5Tclose(t);
    H5Aclose(a);
    haddr_t eoa = 0;
    assert_true(H5Fget_eoa(f, &eoa) >= 0);
    H5Fclose(f);
    tsr_h5_unlock();
    /* After the data, the root attributes (the format's version 2). */
    tsr_ckpt_info_t info;
    assert_int_equal(tsr_ckpt_verify(path, &info), TSR_OK);
    tsr_ckpt_meta_t m = {info.step,   info.epoch, info.samples_seen, info.seed, (int)info.world_size,
                         info.config, info.model};
    crc = tsr_ckpt_crc_attrs((uint32_t)crc, &m, info.created, list);
    tsr_ckpt_info_free(&info);
    snprintf(want_sum, sizeof want_sum, "crc32:%08lx", crc);
    assert_string_equal(sum, want_sum);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal((long long)st.st_size, (long long)eoa);
}

static void big_roundtrip(int async, int sync)
{
    char name[64];
    snprintf(name, sizeof name, "big-%d-%d", async, sync);
    const char *d = tpath(name);
    big_t b, want;
    tsr_ckpt_t *c = big_engine(d, async, &b);
    for (int i = 0; i < NBIG; i++) {
        want.bytes[i] = b.bytes[i];
        want.p[i] = malloc(b.bytes[i] + 1);
        assert_non_null(want.p[i]);
    }
    enum { CONFIG = 60000 }; /* metadata far bigger than usual (attributes stop at 64 KiB) */
    char *config = malloc(CONFIG);
    assert_non_null(config);
    for (int i = 0; i < CONFIG - 1; i++)
        config[i] = (char)('a' + i % 26);
    config[CONFIG - 1] = '\0';
    for (long step = 1; step <= 3; step++) {
        fill_big(&b, (int)step);
        fill_big(&want, (int)step);
        tsr_ckpt_meta_t m = meta_at(step);
        if (step == 2)
            m.config = config;
        assert_int_equal(tsr_ckpt_write(c, &m, sync), TSR_OK);
        fill_big(&b, 99); /* live memory changes at once; the file must not */
        assert_int_equal(tsr_ckpt_wait(c), TSR_OK);
        check_big_file(ckpt_file(d, step), &want);
        tsr_ckpt_info_t info;
        assert_int_equal(tsr_ckpt_verify(ckpt_file(d, step), &info), TSR_OK);
        assert_int_equal(info.ndatasets, NBIG);
        if (step == 2)
            assert_string_equal(info.config, config);
        tsr_ckpt_info_free(&info);
    }
    assert_int_equal(count_entries(d, "ckpt-"), 2);
    assert_int_equal(count_entries(d, ".ckpt-"), 0);
    for (long step = 2; step <= 3; step++) {
        fill_big(&b, 0);
        fill_big(&want, (int)step);
        assert_int_equal(tsr_ckpt_restore(c, ckpt_file(d, step), NULL), TSR_OK);
        for (int i = 0; i < NBIG; i++)
            assert_memory_equal(b.p[i], want.p[i], b.bytes[i]);
    }
    tsr_ckpt_destroy(c);
    free(config);
    free_big(&b);
    free_big(&want);
}

static void test_big_regions_sync(void **state)
{
    (void)state;
    big_roundtrip(0, 1);
}

static void test_big_regions_async(void **state)
{
    (void)state;
    big_roundtrip(1, 0);
    big_roundtrip(1, 1);
}

/* Many datasets, big and small in turn, in many groups: more metadata than
 * one metadata block is sized for still gives a sound file. */
static void test_many_regions(void **state)
{
    (void)state;
    enum { N = 240 };
    const char *d = tpath("many");
    tsr_ckpt_t *c = engine(d, 1, 1, NULL);
    float *p[N];
    size_t n[N];
    for (int i = 0; i < N; i++) {
        char name[64];
        n[i] = i % 2 ? 5 + (size_t)i : 16384 + (size_t)i * 3;
        p[i] = malloc(n[i] * sizeof(float));
        assert_non_null(p[i]);
        for (size_t k = 0; k < n[i]; k++)
            p[i][k] = (float)(i * 100000 + (int)k);
        snprintf(name, sizeof name, "/group_%d/sub_%d/region_%d", i % 13, i % 5, i);
        assert_int_equal(tsr_ckpt_register(c, name, p[i], TSR_CKPT_FLOAT32, 1, &n[i]), TSR_OK);
    }
    size_t zero = 0; /* an empty region needs no memory */
    assert_int_equal(tsr_ckpt_register(c, "/empty", NULL, TSR_CKPT_INT64, 1, &zero), TSR_OK);
    tsr_ckpt_meta_t m = meta_at(4);
    assert_int_equal(tsr_ckpt_write(c, &m, 1), TSR_OK);
    tsr_ckpt_info_t info;
    assert_int_equal(tsr_ckpt_verify(ckpt_file(d, 4), &info), TSR_OK);
    assert_int_equal(info.ndatasets, N + 1);
    tsr_ckpt_info_free(&info);
    for (int i = 0; i < N; i++)
        memset(p[i], 0, n[i] * sizeof(float));
    assert_int_equal(tsr_ckpt_restore(c, ckpt_file(d, 4), NULL), TSR_OK);
    for (int i = 0; i < N; i++)
        for (size_t k = 0; k < n[i]; k++)
            assert_true(p[i][k] == (float)(i * 100000 + (int)k));
    tsr_ckpt_destroy(c);
    for (int i = 0; i < N; i++)
        free(p[i]);
}

/* A write cut short while the big datasets go out (a full disk) fails
 * cleanly, leaves no temporary, and the engine goes on working. */
static void test_big_write_fails_cleanly(void **state)
{
    (void)state;
    const char *d = tpath("big-fail");
    for (int async = 0; async <= 1; async++) {
        big_t b;
        tsr_ckpt_t *c = big_engine(d, async, &b);
        fill_big(&b, 1);
        tsr_ckpt_meta_t m = meta_at(10 + async * 10);
        assert_int_equal(tsr_ckpt_write(c, &m, 1), TSR_OK);
        struct rlimit old, lim;
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
        for (int k = 0; k < 2; k++) {
            lim = old;
            lim.rlim_cur = k ? 3 << 20 : 1 << 20; /* in the first dataset, or after it */
            void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
            assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
            m = meta_at(11 + async * 10 + k);
            int rc = tsr_ckpt_write(c, &m, k);
            if (rc == TSR_OK)
                rc = tsr_ckpt_wait(c);
            assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
            signal(SIGXFSZ, prev);
            assert_int_equal(rc, TSR_EIO);
            assert_non_null(strstr(tsr_last_error(), ckpt_file(d, 11 + async * 10 + k)));
            assert_non_null(strstr(tsr_last_error(), "previous checkpoint is untouched"));
            assert_false(exists(ckpt_file(d, 11 + async * 10 + k)));
            assert_int_equal(count_entries(d, ".ckpt-"), 0);
        }
        assert_int_equal(tsr_ckpt_verify(ckpt_file(d, 10 + async * 10), NULL), TSR_OK);
        m = meta_at(15 + async * 10);
        assert_int_equal(tsr_ckpt_write(c, &m, 1), TSR_OK);
        assert_int_equal(tsr_ckpt_verify(ckpt_file(d, 15 + async * 10), NULL), TSR_OK);
        tsr_ckpt_destroy(c);
        free_big(&b);
    }
}

/* No failure is lost: asynchronous writes that fail while the next one is
 * due are each handed out once by take_failure, oldest first; a failed
 * synchronous write is returned to its caller and not handed out again. */
static void test_failures_collected(void **state)
{
    (void)state;
    const char *d = tpath("fail-collect");
    /* A regular file where the directory should be: every write fails. */
    FILE *blocker = fopen(d, "w");
    assert_non_null(blocker);
    fclose(blocker);
    for (int async = 0; async <= 1; async++) {
        tsr_ckpt_config_t cc = {.dir = d, .every_steps = 1, .keep = 2, .async = async};
        tsr_ckpt_t *c = NULL;
        float x[4] = {1, 2, 3, 4};
        size_t four = 4;
        long step = 0;
        assert_int_equal(tsr_ckpt_create(&cc, &c), TSR_OK);
        assert_int_equal(tsr_ckpt_register(c, "/x", x, TSR_CKPT_FLOAT32, 1, &four), TSR_OK);
        tsr_ckpt_meta_t m = meta_at(100);
        int rc = tsr_ckpt_write(c, &m, 0);
        assert_int_equal(rc, async ? TSR_OK : TSR_EIO); /* without a thread the caller gets it */
        m = meta_at(200);
        tsr_ckpt_write(c, &m, 0); /* waits for 100, whose failure must survive */
        tsr_ckpt_wait(c);
        if (async) {
            assert_int_equal(tsr_ckpt_take_failure(c, &step), TSR_EIO);
            assert_int_equal(step, 100);
            assert_non_null(strstr(tsr_last_error(), "ckpt-0000000100.h5"));
            assert_int_equal(tsr_ckpt_take_failure(c, &step), TSR_EIO);
            assert_int_equal(step, 200);
        }
        assert_int_equal(tsr_ckpt_take_failure(c, &step), TSR_OK);
        m = meta_at(300);
        assert_int_equal(tsr_ckpt_write(c, &m, 1), TSR_EIO);
        assert_int_equal(tsr_ckpt_take_failure(c, &step), TSR_OK);
        assert_int_equal(tsr_ckpt_failed(c), 3);
        assert_int_equal(tsr_ckpt_written(c), 0);
        const char *why = NULL;
        assert_int_equal(tsr_ckpt_failure(c, 1, &why), 200);
        assert_non_null(why);
        tsr_ckpt_destroy(c);
    }
    unlink(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_matches_zlib),      cmocka_unit_test(test_big_regions_sync),
        cmocka_unit_test(test_big_regions_async),       cmocka_unit_test(test_many_regions),
        cmocka_unit_test(test_big_write_fails_cleanly), cmocka_unit_test(test_failures_collected),
    };
    return cmocka_run_group_tests_name("ckpt_write", tests, setup_dir, teardown_dir);
}
