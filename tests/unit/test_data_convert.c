/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the data module's converters: CSV (header detection,
 * label column, scale, gzip, a seeded test split) and IDX (plain and
 * gzip, with a test split), and the inputs each refuses (tables), never
 * leaving an output or a temporary file behind. */
#include "data_test_util.h"

static void test_csv(void **state)
{
    (void)state;
    const char *csv = tpath("small.csv");
    const char *out = tpath("small_csv.h5");
    write_text(csv, "f1, f2, label\n"
                    "1.5,2,0\n"
                    "\n"
                    "3,-4e-1,2\r\n"
                    "5,6,1\n"
                    "7,8,1"); /* no final newline */
    assert_int_equal(tsr_data_convert_csv(csv, out, -1, 0, 0), TSR_OK);
    assert_int_equal(tsr_dataset_has_test(out), 0);
    tsr_dataset_t *ds = NULL;
    assert_int_equal(tsr_dataset_open(out, TSR_SPLIT_TRAIN, 0, &ds), TSR_OK);
    assert_int_equal(tsr_dataset_rows(ds), 4);
    assert_int_equal(tsr_dataset_dim(ds), 2);
    assert_int_equal(tsr_dataset_validate(ds, 0), TSR_OK);
    assert_int_equal(tsr_dataset_classes(ds), 3);
    float x[8];
    int32_t y[4];
    assert_int_equal(tsr_dataset_read(ds, 0, 4, x, y, NULL), TSR_OK);
    const float wx[8] = {1.5f, 2, 3, -0.4f, 5, 6, 7, 8};
    const int32_t wy[4] = {0, 2, 1, 1};
    for (int i = 0; i < 8; i++)
        assert_float_equal(x[i], wx[i], 1e-6);
    assert_memory_equal(y, wy, sizeof wy);
    tsr_dataset_destroy(ds);

    /* Label in column 0, scaled features, no header, gzip input. */
    const char *gz = tpath("lab0.csv.gz");
    const char *text = "1,2,4\n0,6,8\n1,10,12\n";
    write_gz(gz, text, strlen(text));
    assert_int_equal(tsr_data_convert_csv_scaled(gz, out, 0, 0, 0, 0.5), TSR_OK);
    assert_int_equal(tsr_dataset_open(out, TSR_SPLIT_TRAIN, 0, &ds), TSR_OK);
    assert_int_equal(tsr_dataset_rows(ds), 3);
    assert_int_equal(tsr_dataset_read(ds, 0, 3, x, y, NULL), TSR_OK);
    assert_float_equal(x[0], 1, 1e-6);
    assert_float_equal(x[5], 6, 1e-6);
    assert_int_equal(y[1], 0);
    tsr_dataset_destroy(ds);
    assert_no_output(tpath("nothing.h5"));
}

static void test_csv_split(void **state)
{
    (void)state;
    const char *csv = tpath("split.csv");
    const char *out = tpath("split.h5");
    const char *out2 = tpath("split2.h5");
    char text[4096] = "a,b,c\n";
    enum { N = 20 };
    for (int i = 0; i < N; i++) {
        char line[64];
        snprintf(line, sizeof line, "%d,%d,%d\n", i, 100 + i, i % 4);
        strcat(text, line);
    }
    write_text(csv, text);
    assert_int_equal(tsr_data_convert_csv(csv, out, -1, 0.25, 9), TSR_OK);
    assert_int_equal(tsr_data_convert_csv(csv, out2, -1, 0.25, 9), TSR_OK);
    assert_int_equal(tsr_dataset_has_test(out), 1);
    tsr_dataset_t *tr = NULL, *te = NULL, *tr2 = NULL;
    assert_int_equal(tsr_dataset_open(out, TSR_SPLIT_TRAIN, 0, &tr), TSR_OK);
    assert_int_equal(tsr_dataset_open(out, TSR_SPLIT_TEST, 0, &te), TSR_OK);
    assert_int_equal(tsr_dataset_open(out2, TSR_SPLIT_TRAIN, 0, &tr2), TSR_OK);
    assert_int_equal(tsr_dataset_rows(tr), 15);
    assert_int_equal(tsr_dataset_rows(te), 5);
    float x[N * 2], x2[N * 2];
    int32_t y[N];
    char seen[N] = {0};
    assert_int_equal(tsr_dataset_read(tr, 0, 15, x, y, NULL), TSR_OK);
    assert_int_equal(tsr_dataset_read(te, 0, 5, x + 30, y + 15, NULL), TSR_OK);
    int in_order = 1;
    for (int i = 0; i < N; i++) {
        int r = (int)x[i * 2];
        assert_true(r >= 0 && r < N);
        assert_float_equal(x[i * 2 + 1], (float)(100 + r), 1e-6);
        assert_int_equal(y[i], r % 4);
        assert_int_equal(seen[r], 0);
        seen[r] = 1;
        in_order &= r == i;
    }
    assert_false(in_order); /* shuffled */
    /* Same seed, same split. */
    assert_int_equal(tsr_dataset_read(tr2, 0, 15, x2, NULL, NULL), TSR_OK);
    assert_memory_equal(x, x2, 15 * 2 * sizeof(float));
    tsr_dataset_destroy(tr);
    tsr_dataset_destroy(te);
    tsr_dataset_destroy(tr2);

    assert_int_equal(tsr_data_convert_csv(csv, tpath("bad.h5"), -1, 1.0, 0), TSR_EINVAL);
    assert_int_equal(tsr_data_convert_csv(csv, tpath("bad.h5"), 3, 0, 0), TSR_EINVAL);
    assert_msg_has("label column 3");
    /* The output must not be the input. */
    assert_int_equal(tsr_data_convert_csv(csv, csv, -1, 0, 0), TSR_EINVAL);
    assert_no_output(tpath("bad.h5"));
}

/* Files the CSV converter refuses with TSR_EDATA and a message naming
 * the file and each of what[] (converted with a 0.2 test split, seed 1). */
static const struct csv_case {
    const char *name, *text, *what[2];
} csv_cases[] = {
    {"badcell.csv", "x,y,l\n1,2,0\n3,4,1\n5,abc,1\n", {"line 4, column 2", "\"abc\""}},
    {"badlabel.csv", "1,2,0\n3,4,1.5\n", {"line 2, column 3", "label"}},
    {"neglabel.csv", "1,2,0\n3,4,-1\n", {"line 2", "non-negative integer"}},
    {"ragged.csv", "1,2,0\n3,4,1\n3,1\n", {"line 3 has 2 columns", "expected 3"}},
    {"long.csv", "1,2,0\n3,4,1,7\n", {"line 2 has 4 columns"}},
    {"empty.csv", "a,b,c\n\n", {"no data rows"}},
    {"emptycell.csv", "1,2,0\n3,,1\n", {"line 2, column 2", "empty"}},
    {"nan.csv", "1,2,0\n3,nan,1\n", {"line 2, column 2"}},
    {"onecol.csv", "1\n2\n", {"line 1"}},
    /* A first line with one bad cell among numbers is data, not a header. */
    {"firstbad.csv", "1,x,0,4\n1,2,0,4\n", {"line 1, column 2"}},
    /* Too few rows for a test split. */
    {"tiny.csv", "1,2,0\n", {"too few"}},
};

static void test_csv_errors(void **state)
{
    (void)state;
    const char *out = tpath("fail_csv.h5");
    for (size_t i = 0; i < sizeof csv_cases / sizeof csv_cases[0]; i++) {
        const struct csv_case *c = &csv_cases[i];
        const char *csv = tpath(c->name);
        write_text(csv, c->text);
        int rc = tsr_data_convert_csv(csv, out, -1, 0.2, 1);
        if (rc != TSR_EDATA)
            fail_msg("%s: expected %d, got %d (%s)", c->name, TSR_EDATA, rc, tsr_last_error());
        assert_msg_has(csv);
        for (int w = 0; w < 2 && c->what[w]; w++)
            assert_msg_has(c->what[w]);
        assert_no_output(out);
    }
    assert_int_equal(tsr_data_convert_csv(tpath("nope.csv"), out, -1, 0, 0), TSR_EDATA);
    assert_msg_has("nope.csv");
    assert_no_output(out);
    /* A truncated gzip stream is an error, not a short file. */
    const char *gz = tpath("cut.csv.gz");
    char text[8192];
    size_t len = 0;
    for (int i = 0; i < 500; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%d,%d,%d\n", i, i * 7 % 13, i % 3);
    write_gz(gz, text, len);
    struct stat st;
    assert_int_equal(stat(gz, &st), 0);
    assert_int_equal(truncate(gz, st.st_size / 2), 0);
    assert_int_equal(tsr_data_convert_csv(gz, out, -1, 0, 0), TSR_EDATA);
    assert_msg_has("cut.csv.gz");
    assert_no_output(out);
}

/* IDX bytes: images (n of r x c, pixel k = k*7 mod 256) and labels. */
static size_t idx_images(unsigned char *buf, uint32_t magic, uint32_t n, uint32_t r, uint32_t c)
{
    uint32_t h[4] = {magic, n, r, c};
    for (int i = 0; i < 4; i++) {
        buf[i * 4] = (unsigned char)(h[i] >> 24);
        buf[i * 4 + 1] = (unsigned char)(h[i] >> 16);
        buf[i * 4 + 2] = (unsigned char)(h[i] >> 8);
        buf[i * 4 + 3] = (unsigned char)h[i];
    }
    size_t px = (size_t)n * r * c;
    for (size_t k = 0; k < px; k++)
        buf[16 + k] = (unsigned char)(k * 7 % 256);
    return 16 + px;
}

static size_t idx_labels(unsigned char *buf, uint32_t magic, uint32_t n)
{
    uint32_t h[2] = {magic, n};
    for (int i = 0; i < 2; i++) {
        buf[i * 4] = (unsigned char)(h[i] >> 24);
        buf[i * 4 + 1] = (unsigned char)(h[i] >> 16);
        buf[i * 4 + 2] = (unsigned char)(h[i] >> 8);
        buf[i * 4 + 3] = (unsigned char)h[i];
    }
    for (uint32_t k = 0; k < n; k++)
        buf[8 + k] = (unsigned char)(k % 10);
    return 8 + n;
}

static void check_idx_output(const char *out, uint32_t n, int with_test)
{
    tsr_dataset_t *ds = NULL;
    assert_int_equal(tsr_dataset_open(out, TSR_SPLIT_TRAIN, 0, &ds), TSR_OK);
    assert_int_equal(tsr_dataset_rows(ds), n);
    assert_int_equal(tsr_dataset_dim(ds), 6);
    assert_string_equal(tsr_dataset_dtype(ds), "uint8");
    assert_float_equal(tsr_dataset_scale(ds), 1.0 / 255, 1e-9);
    float x[64 * 6];
    int32_t y[64];
    assert_int_equal(tsr_dataset_read(ds, 0, n, x, y, NULL), TSR_OK);
    for (size_t k = 0; k < (size_t)n * 6; k++)
        assert_float_equal(x[k], (float)(k * 7 % 256) / 255.0f, 1e-6);
    for (uint32_t k = 0; k < n; k++)
        assert_int_equal(y[k], (int32_t)(k % 10));
    assert_int_equal(tsr_dataset_validate(ds, 10), TSR_OK);
    tsr_dataset_destroy(ds);
    assert_int_equal(tsr_dataset_has_test(out), with_test);
    /* Stored as uint8 with a float "scale" attribute. */
    tsr_h5_lock();
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "X", H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    int u8 = H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 1 && H5Tget_sign(t) == H5T_SGN_NONE;
    int fmt = H5Aexists(f, "format") > 0 && H5Aexists(f, "source") > 0 && H5Aexists(f, "created") > 0;
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);
    tsr_h5_unlock();
    assert_true(u8);
    assert_true(fmt);
}

static void test_idx(void **state)
{
    (void)state;
    unsigned char img[16 + 64 * 6], lab[8 + 64], timg[16 + 64 * 6], tlab[8 + 64];
    size_t ni = idx_images(img, 0x803, 5, 2, 3), nl = idx_labels(lab, 0x801, 5);
    size_t nti = idx_images(timg, 0x803, 3, 2, 3), ntl = idx_labels(tlab, 0x801, 3);
    const char *out = tpath("idx.h5");

    /* Plain files. */
    write_bin(tpath("img.idx"), img, ni);
    write_bin(tpath("lab.idx"), lab, nl);
    assert_int_equal(tsr_data_convert_idx(tpath("img.idx"), tpath("lab.idx"), NULL, NULL, out), TSR_OK);
    check_idx_output(out, 5, 0);

    /* Gzipped, with a test split. */
    write_gz(tpath("img.idx.gz"), img, ni);
    write_gz(tpath("lab.idx.gz"), lab, nl);
    write_gz(tpath("timg.idx.gz"), timg, nti);
    write_gz(tpath("tlab.idx.gz"), tlab, ntl);
    assert_int_equal(
        tsr_data_convert_idx(tpath("img.idx.gz"), tpath("lab.idx.gz"), tpath("timg.idx.gz"), tpath("tlab.idx.gz"), out),
        TSR_OK);
    check_idx_output(out, 5, 1);
    tsr_dataset_t *ds = NULL;
    assert_int_equal(tsr_dataset_open(out, TSR_SPLIT_TEST, 0, &ds), TSR_OK);
    assert_int_equal(tsr_dataset_rows(ds), 3);
    tsr_dataset_destroy(ds);
    unlink(out);
}

/* IDX inputs the converter refuses with TSR_EDATA and a message holding
 * each of what[] (file names under the test directory; the files are
 * written by test_idx_errors first). */
static const struct idx_case {
    const char *img, *lab, *what[3];
} idx_cases[] = {
    /* Swapped files: wrong magic, named with the offset. */
    {"e_lab.idx", "e_img.idx", {"bad magic number 0x00000801 at offset 0", "labels file", "e_lab.idx"}},
    /* Truncated pixel data (plain and gzip), a truncated header. */
    {"t_img.idx", "e_lab.idx", {"truncated", "t_img.idx"}},
    {"t_img.idx.gz", "e_lab.idx", {"truncated", "t_img.idx.gz"}},
    {"h_img.idx", "e_lab.idx", {"truncated at offset", "h_img.idx"}},
    /* Trailing data. */
    {"l_img.idx", "e_lab.idx", {"l_img.idx", "should end"}},
    /* Count mismatch. */
    {"e_img.idx", "c_lab.idx", {"5 images", "4 labels"}},
    /* A missing file; a corrupt gzip stream. */
    {"none.idx", "e_lab.idx", {"none.idx"}},
    {"j_img.idx.gz", "e_lab.idx", {"j_img.idx.gz"}},
};

static void test_idx_errors(void **state)
{
    (void)state;
    unsigned char img[16 + 64 * 6], lab[8 + 64];
    size_t ni = idx_images(img, 0x803, 5, 2, 3), nl = idx_labels(lab, 0x801, 5);
    write_bin(tpath("e_img.idx"), img, ni);
    write_bin(tpath("e_lab.idx"), lab, nl);
    write_bin(tpath("t_img.idx"), img, ni - 4);
    write_gz(tpath("t_img.idx.gz"), img, ni - 4);
    write_bin(tpath("h_img.idx"), img, 10);
    unsigned char longer[sizeof img + 1];
    memcpy(longer, img, ni);
    longer[ni] = 1;
    write_bin(tpath("l_img.idx"), longer, ni + 1);
    nl = idx_labels(lab, 0x801, 4);
    write_bin(tpath("c_lab.idx"), lab, nl);
    unsigned char junk[40] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    write_bin(tpath("j_img.idx.gz"), junk, sizeof junk);

    const char *out = tpath("fail_idx.h5");
    for (size_t i = 0; i < sizeof idx_cases / sizeof idx_cases[0]; i++) {
        const struct idx_case *c = &idx_cases[i];
        int rc = tsr_data_convert_idx(tpath(c->img), tpath(c->lab), NULL, NULL, out);
        if (rc != TSR_EDATA)
            fail_msg("%s, %s: expected %d, got %d (%s)", c->img, c->lab, TSR_EDATA, rc, tsr_last_error());
        for (int w = 0; w < 3 && c->what[w]; w++)
            assert_msg_has(c->what[w]);
        assert_no_output(out);
    }
    /* Test images without test labels. */
    assert_int_equal(tsr_data_convert_idx(tpath("e_img.idx"), tpath("e_lab.idx"), tpath("e_img.idx"), NULL, out),
                     TSR_EINVAL);
    assert_no_output(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv), cmocka_unit_test(test_csv_split),  cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_idx), cmocka_unit_test(test_idx_errors),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
