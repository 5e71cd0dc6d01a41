/* SPDX-License-Identifier: BSD-3-Clause */
/* What the checkpoint unit tests share: a private directory under
 * $TSR_TEST_TMP, file helpers, a state of every region type and an engine
 * over it. Included by test_ckpt.c, test_ckpt_restore.c and test_ckpt_write.c. */
#ifndef TSR_TEST_CKPT_UTIL_H
#define TSR_TEST_CKPT_UTIL_H
#define TSR_UNUSED __attribute__((unused))
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

static TSR_UNUSED size_t tsr_ckpt_type_size_for_test(tsr_ckpt_type_t t)
{
    return t == TSR_CKPT_FLOAT64 || t == TSR_CKPT_INT64 ? 8 : t == TSR_CKPT_UINT8 ? 1 : 4;
}

/* A fresh directory name under tmpdir (not created). */
static TSR_UNUSED const char *tpath(const char *name)
{
    static char bufs[32][1200];
    static int next;
    char *b = bufs[next++ % 32];
    snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
    return b;
}

static TSR_UNUSED int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static TSR_UNUSED int setup_dir(void **state)
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

static TSR_UNUSED int teardown_dir(void **state)
{
    (void)state;
    nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static TSR_UNUSED int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static TSR_UNUSED int count_entries(const char *dir, const char *prefix)
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

static TSR_UNUSED void copy_file(const char *from, const char *to, long max_bytes)
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

static TSR_UNUSED void write_text(const char *path, const char *text)
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

static TSR_UNUSED void fill_state(state_t *s, int salt)
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

static TSR_UNUSED int register_state(tsr_ckpt_t *c, state_t *s)
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

static TSR_UNUSED const size_t STATE_BYTES = sizeof(float) * W_ROWS * W_COLS + sizeof(double) * NV + 8 + NB;

static TSR_UNUSED tsr_ckpt_t *engine(const char *dir, int keep, int async, state_t *s)
{
    tsr_ckpt_config_t cfg = {.dir = dir, .keep = keep, .async = async};
    tsr_ckpt_t *c = NULL;
    assert_int_equal(tsr_ckpt_create(&cfg, &c), TSR_OK);
    assert_non_null(c);
    if (s)
        assert_int_equal(register_state(c, s), TSR_OK);
    return c;
}

static TSR_UNUSED tsr_ckpt_meta_t meta_at(long step)
{
    tsr_ckpt_meta_t m = {.step = step,
                         .epoch = step / 10,
                         .samples_seen = step * 64,
                         .seed = 42,
                         .world_size = 3,
                         .config = "[train]\nseed = 42\n",
                         .model = "{\"sizes\":[5,3]}"};
    return m;
}

static TSR_UNUSED const char *ckpt_file(const char *dir, long step)
{
    static char bufs[8][1300];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/ckpt-%010ld.h5", dir, step);
    return b;
}

/* Writes one checkpoint of a state filled with salt to dir at step. */
static TSR_UNUSED void write_one(const char *dir, long step, int salt, int keep)
{
    state_t s;
    fill_state(&s, salt);
    tsr_ckpt_t *c = engine(dir, keep, 0, &s);
    tsr_ckpt_meta_t m = meta_at(step);
    assert_int_equal(tsr_ckpt_write(c, &m, 1), TSR_OK);
    tsr_ckpt_destroy(c);
}

/* ---- round trips ---- */

static TSR_UNUSED void check_info(const tsr_ckpt_info_t *info, long step)
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

#endif
