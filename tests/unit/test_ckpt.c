/* Unit tests of the checkpoint module: registering regions of every type,
 * writing synchronously and on the writer thread, verifying and restoring;
 * retention; when a checkpoint is due; restore refusing files that do not
 * fit (and leaving live memory alone); damaged files; the directory scan;
 * cleaning up temporaries of dead writers; bad registrations. Files live in
 * $TSR_TEST_TMP/ckpt.<pid>. Every raw HDF5 call here holds tsr_h5_lock(),
 * since the library's writer thread may be running. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/crc32.h"
#include "common/h5lock.h"
#include "tessera/ckpt.h"
#include "tessera/error.h"
#include "tessera/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static char tmpdir[1024];

static size_t tsr_ckpt_type_size_for_test(tsr_ckpt_type_t t)
{
    return t == TSR_CKPT_FLOAT64 || t == TSR_CKPT_INT64 ? 8 : t == TSR_CKPT_UINT8 ? 1 : 4;
}

/* A fresh directory name under tmpdir (not created). */
static const char *tpath(const char *name)
{
    static char bufs[32][1200];
    static int next;
    char *b = bufs[next++ % 32];
    snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
    return b;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup_dir(void **state)
{
    (void)state;
    const char *base = getenv("TSR_TEST_TMP");
    if (!base || !base[0])
        base = "/tmp";
    mkdir(base, 0755);
    snprintf(tmpdir, sizeof tmpdir, "%s/ckpt.%ld", base, (long)getpid());
    if (mkdir(tmpdir, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static int count_entries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

static void copy_file(const char *from, const char *to, long max_bytes)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[65536];
    long total = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        if (max_bytes >= 0 && total + (long)n > max_bytes)
            n = (size_t)(max_bytes - total);
        assert_int_equal(fwrite(buf, 1, n, out), n);
        total += (long)n;
        if (max_bytes >= 0 && total >= max_bytes)
            break;
    }
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* ---- the state every test checkpoints: one region of each type ---- */

#define W_ROWS 3
#define W_COLS 5
#define NV 7
#define NB 4096

typedef struct {
    float w[W_ROWS][W_COLS]; /* float32 2-D */
    double v[NV];            /* float64 1-D */
    int64_t step;            /* int64 scalar [1] */
    uint8_t b[NB];           /* uint8: 0xA5 everywhere, a pattern to find in the file */
} state_t;

static void fill_state(state_t *s, int salt)
{
    memset(s, 0, sizeof *s); /* padding too, so whole states compare */
    for (int i = 0; i < W_ROWS; i++)
        for (int j = 0; j < W_COLS; j++)
            s->w[i][j] = (float)(salt * 100 + i * W_COLS + j) * 0.25f - 3.0f;
    for (int i = 0; i < NV; i++)
        s->v[i] = 1.0 / (double)(i + 1 + salt) + 1e-300 * i;
    s->step = 1000000007LL * (salt + 1);
    memset(s->b, 0xA5, sizeof s->b);
}

static int register_state(tsr_ckpt_t *c, state_t *s)
{
    size_t wd[2] = {W_ROWS, W_COLS}, vd[1] = {NV}, one[1] = {1}, bd[1] = {NB};
    int rc = tsr_ckpt_register(c, "/model/layer_0/weight", s->w, TSR_CKPT_FLOAT32, 2, wd);
    if (!rc)
        rc = tsr_ckpt_register(c, "/optimizer/v", s->v, TSR_CKPT_FLOAT64, 1, vd);
    if (!rc)
        rc = tsr_ckpt_register(c, "/optimizer/steps", &s->step, TSR_CKPT_INT64, 1, one);
    if (!rc)
        rc = tsr_ckpt_register(c, "/data/bytes", s->b, TSR_CKPT_UINT8, 1, bd);
    return rc;
}

static const size_t STATE_BYTES = sizeof(float) * W_ROWS * W_COLS + sizeof(double) * NV + 8 + NB;

static tsr_ckpt_t *engine(const char *dir, int keep, int async, state_t *s)
{
    tsr_ckpt_config_t cfg = {.dir = dir, .keep = keep, .async = async};
    tsr_ckpt_t *c = NULL;
    assert_int_equal(tsr_ckpt_create(&cfg, &c), TSR_OK);
    assert_non_null(c);
    if (s)
        assert_int_equal(register_state(c, s), TSR_OK);
    return c;
}

static tsr_ckpt_meta_t meta_at(long step)
{
    tsr_ckpt_meta_t m = {.step = step, .epoch = step / 10, .samples_seen = step * 64, .seed = 42,
                         .world_size = 3, .config = "[train]\nseed = 42\n", .model = "{\"sizes\":[5,3]}"};
    return m;
}

static const char *ckpt_file(const char *dir, long step)
{
    static char bufs[8][1300];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/ckpt-%010ld.h5", dir, step);
    return b;
}

/* Writes one checkpoint of a state filled with salt to dir at step. */
static void write_one(const char *dir, long step, int salt, int keep)
{
    state_t s;
    fill_state(&s, salt);
    tsr_ckpt_t *c = engine(dir, keep, 0, &s);
    tsr_ckpt_meta_t m = meta_at(step);
    assert_int_equal(tsr_ckpt_write(c, &m, 1), TSR_OK);
    tsr_ckpt_destroy(c);
}

/* ---- round trips ---- */

static void check_info(const tsr_ckpt_info_t *info, long step)
{
    assert_int_equal(info->step, step);
    assert_int_equal(info->epoch, step / 10);
    assert_int_equal(info->samples_seen, step * 64);
    assert_int_equal(info->seed, 42);
    assert_int_equal(info->world_size, 3);
    assert_int_equal(info->version, TSR_CKPT_VERSION);
    assert_int_equal(info->ndatasets, 4);
    assert_int_equal(info->bytes, STATE_BYTES);
    assert_int_equal(strlen(info->created), 20); /* 2024-01-02T03:04:05Z */
    assert_int_equal(info->created[19], 'Z');
    assert_string_equal(info->config, "[train]\nseed = 42\n");
    assert_string_equal(info->model, "{\"sizes\":[5,3]}");
}

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

static const char *const big_names[NBIG] = {"/big/f32", "/small/v", "/big/exact64k", "/i64",
                                            "/a/b/c/deep", "/small/one", "/big/odd", "/u8/empty", "/last"};

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
    char sum[32], want_sum[32];
    hid_t a = H5Aopen(f, "checksum", H5P_DEFAULT), t = H5Aget_type(a);
    assert_true(H5Tget_size(t) < sizeof sum);
    assert_true(H5Aread(a, t, sum) >= 0);
    H5Tclose(t);
    H5Aclose(a);
    haddr_t eoa = 0;
    assert_true(H5Fget_eoa(f, &eoa) >= 0);
    H5Fclose(f);
    tsr_h5_unlock();
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
        /* (a) The final name is taken by a directory: rename fails. */
        assert_int_equal(mkdir(ckpt_file(dir, base + 3), 0755), 0);
        tsr_ckpt_meta_t m = meta_at(base + 3);
        int rc = tsr_ckpt_write(c, &m, 0);
        if (rc == TSR_OK)
            rc = tsr_ckpt_wait(c);
        assert_int_equal(rc, TSR_EIO);
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
    refuse(tpath("mismatch/ckpt-0000000099.h5"), reg_all, TSR_EIO, NULL); /* no such file */
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
        cmocka_unit_test(test_crc32_matches_zlib),
        cmocka_unit_test(test_big_regions_sync),
        cmocka_unit_test(test_big_regions_async),
        cmocka_unit_test(test_many_regions),
        cmocka_unit_test(test_big_write_fails_cleanly),
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
