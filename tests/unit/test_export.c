/* SPDX-License-Identifier: BSD-3-Clause */
/* Export: the ONNX bytes decoded with an independent protobuf wire reader
 * (not protobuf-c) — operators in order, initializers equal to the weights —
 * and the graph evaluated from those initializers equals tsr_model_predict;
 * HDF5 export is a byte copy; errors name the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tessera/error.h"
#include "tessera/export.h"
#include "tessera/model.h"

/* --- a minimal protobuf wire reader --- */
typedef struct {
    const uint8_t *p, *end;
} rd_t;

static uint64_t varint(rd_t *r)
{
    uint64_t v = 0;
    for (int s = 0; r->p < r->end && s < 64; s += 7) {
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80))
            break;
    }
    return v;
}

/* Next field: number, wire type, and for length-delimited fields a sub-reader. */
static int field(rd_t *r, int *num, int *wt, uint64_t *v, rd_t *sub)
{
    if (r->p >= r->end)
        return 0;
    uint64_t key = varint(r);
    *num = (int)(key >> 3);
    *wt = (int)(key & 7);
    if (*wt == 0) {
        *v = varint(r);
    } else if (*wt == 2) {
        uint64_t n = varint(r);
        assert_true(n <= (uint64_t)(r->end - r->p));
        sub->p = r->p;
        sub->end = r->p + n;
        r->p += n;
    } else if (*wt == 5) {
        r->p += 4;
    } else if (*wt == 1) {
        r->p += 8;
    } else {
        fail_msg("unexpected wire type %d", *wt);
    }
    return 1;
}

static int str_eq(rd_t s, const char *want)
{
    return (size_t)(s.end - s.p) == strlen(want) && memcmp(s.p, want, strlen(want)) == 0;
}

typedef struct {
    char op[8][16];
    int nops;
    float *init[16]; /* copies: raw_data is not float-aligned in the buffer */
    size_t init_len[16];
    int ninit, ir, opset, trans_b;
} onnx_t;

static void read_node(rd_t n, onnx_t *o)
{
    int num, wt;
    uint64_t v;
    rd_t sub;
    while (field(&n, &num, &wt, &v, &sub)) {
        if (num == 4) { /* op_type */
            snprintf(o->op[o->nops], sizeof o->op[0], "%.*s", (int)(sub.end - sub.p), (const char *)sub.p);
        } else if (num == 5) { /* attribute */
            int an, aw;
            uint64_t av;
            rd_t as, name = {0};
            long i = -1;
            while (field(&sub, &an, &aw, &av, &as)) {
                if (an == 1)
                    name = as;
                if (an == 3)
                    i = (long)av;
            }
            if (str_eq(name, "transB") && i == 1)
                o->trans_b++;
        }
    }
    o->nops++;
}

static void read_model(const uint8_t *buf, size_t len, onnx_t *o)
{
    rd_t r = {buf, buf + len}, sub, g;
    int num, wt;
    uint64_t v;
    memset(o, 0, sizeof *o);
    while (field(&r, &num, &wt, &v, &sub)) {
        if (num == 1)
            o->ir = (int)v;
        if (num == 8) { /* opset_import */
            int n2, w2;
            uint64_t v2;
            rd_t s2;
            while (field(&sub, &n2, &w2, &v2, &s2))
                if (n2 == 2)
                    o->opset = (int)v2;
        }
        if (num != 7) /* graph */
            continue;
        g = sub;
        while (field(&g, &num, &wt, &v, &sub)) {
            if (num == 1) {
                read_node(sub, o);
            } else if (num == 5) { /* initializer: raw_data (9) */
                int n2, w2;
                uint64_t v2;
                rd_t s2 = {0};
                while (field(&sub, &n2, &w2, &v2, &s2))
                    if (n2 == 9) {
                        size_t n = (size_t)(s2.end - s2.p);
                        o->init[o->ninit] = malloc(n ? n : 1);
                        memcpy(o->init[o->ninit], s2.p, n);
                        o->init_len[o->ninit] = n / sizeof(float);
                    }
                o->ninit++;
            }
        }
    }
}

/* The MLP the tests export: widths SZ, the activation between layers. */
static const size_t SZ[4] = {5, 7, 6, 4};
enum { NL = 3 };
static tsr_act_t cur_act;

static tsr_model_t *make(tsr_act_t act, tsr_loss_t loss)
{
    cur_act = act;
    tsr_model_spec_t s;
    tsr_model_spec_mlp(&s, (const size_t[]){5, 7, 6, 4}, 3, act, loss);
    tsr_model_t *m = NULL;
    assert_int_equal(tsr_model_create(&s, 8, &m), TSR_OK);
    tsr_model_init(m, 11);
    return m;
}

static float apply(tsr_act_t a, float z)
{
    return a == TSR_ACT_RELU ? (z > 0 ? z : 0) : a == TSR_ACT_TANH ? tanhf(z) : 1.0f / (1.0f + expf(-z));
}

/* Evaluates the decoded graph: Gemm(transB) + activation per layer, softmax last. */
static void eval(const onnx_t *o, const tsr_model_spec_t *s, const float *x, float *out)
{
    float a[16], b[16];
    memcpy(a, x, SZ[0] * sizeof(float));
    for (int l = 0; l < NL; l++) {
        const float *w = o->init[2 * l], *bias = o->init[2 * l + 1];
        size_t in = SZ[l], outn = SZ[l + 1];
        for (size_t j = 0; j < outn; j++) {
            double z = bias[j];
            for (size_t i = 0; i < in; i++)
                z += (double)w[j * in + i] * a[i];
            b[j] = l < NL - 1 ? apply(cur_act, (float)z) : (float)z;
        }
        memcpy(a, b, outn * sizeof(float));
    }
    size_t k = SZ[NL];
    if (s->loss == TSR_LOSS_XENT) {
        double mx = a[0], sum = 0;
        for (size_t j = 1; j < k; j++)
            mx = a[j] > mx ? a[j] : mx;
        for (size_t j = 0; j < k; j++)
            sum += exp(a[j] - mx);
        for (size_t j = 0; j < k; j++)
            out[j] = (float)(exp(a[j] - mx) / sum);
    } else {
        memcpy(out, a, k * sizeof(float));
    }
}

static void check(tsr_act_t act, tsr_loss_t loss, const char *const *ops, int nops)
{
    tsr_model_t *m = make(act, loss);
    const tsr_model_spec_t *s = tsr_model_spec(m);
    unsigned char *buf = NULL;
    size_t len = 0;
    assert_int_equal(tsr_export_onnx_buffer(m, "t", &buf, &len), TSR_OK);
    onnx_t o;
    read_model(buf, len, &o);
    assert_int_equal(o.ir, 7);
    assert_int_equal(o.opset, 13);
    assert_int_equal(o.nops, nops);
    for (int i = 0; i < nops; i++)
        assert_string_equal(o.op[i], ops[i]);
    assert_int_equal(o.trans_b, NL);
    assert_int_equal(o.ninit, 2 * NL);
    for (int l = 0; l < NL; l++) {
        size_t wn = SZ[l] * SZ[l + 1];
        const float *p = tsr_model_params(m) + tsr_model_layer_offset(m, 2 * l);
        assert_int_equal(o.init_len[2 * l], wn);
        assert_int_equal(o.init_len[2 * l + 1], SZ[l + 1]);
        assert_memory_equal(o.init[2 * l], p, wn * sizeof(float));
        assert_memory_equal(o.init[2 * l + 1], p + wn, SZ[l + 1] * sizeof(float));
    }
    float x[3 * 5], want[3 * 4], got[4];
    for (int i = 0; i < 15; i++)
        x[i] = (float)sin(i * 0.7) * 2;
    assert_int_equal(tsr_model_predict(m, x, 3, want), TSR_OK);
    for (int r = 0; r < 3; r++) {
        eval(&o, s, x + r * 5, got);
        for (int j = 0; j < 4; j++)
            assert_float_equal(got[j], want[r * 4 + j], 1e-5);
    }
    for (int i = 0; i < o.ninit; i++)
        free(o.init[i]);
    free(buf);
    tsr_model_destroy(m);
}

static void test_onnx_relu_softmax(void **state)
{
    (void)state;
    const char *ops[] = {"Gemm", "Relu", "Gemm", "Relu", "Gemm", "Softmax"};
    check(TSR_ACT_RELU, TSR_LOSS_XENT, ops, 6);
}

static void test_onnx_tanh_mse(void **state)
{
    (void)state;
    const char *ops[] = {"Gemm", "Tanh", "Gemm", "Tanh", "Gemm"};
    check(TSR_ACT_TANH, TSR_LOSS_MSE, ops, 5);
}

static void test_onnx_sigmoid(void **state)
{
    (void)state;
    const char *ops[] = {"Gemm", "Sigmoid", "Gemm", "Sigmoid", "Gemm", "Softmax"};
    check(TSR_ACT_SIGMOID, TSR_LOSS_XENT, ops, 6);
}

static void test_files(void **state)
{
    (void)state;
    const char *tmp = getenv("TSR_TEST_TMP");
    char dir[4096], src[4200], h5[4200], onnx[4200];
    snprintf(dir, sizeof dir, "%s/export.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    mkdir(tmp && tmp[0] ? tmp : "/tmp", 0755);
    assert_non_null(mkdtemp(dir));
    snprintf(src, sizeof src, "%s/m.h5", dir);
    snprintf(h5, sizeof h5, "%s/copy.h5", dir);
    snprintf(onnx, sizeof onnx, "%s/m.onnx", dir);
    tsr_model_t *m = make(TSR_ACT_RELU, TSR_LOSS_XENT);
    assert_int_equal(tsr_model_save(m, src, NULL, 0), TSR_OK);
    assert_int_equal(tsr_export_file(src, TSR_EXPORT_HDF5, h5), TSR_OK);
    assert_int_equal(tsr_export_file(src, TSR_EXPORT_ONNX, onnx), TSR_OK);
    struct stat a, b;
    assert_int_equal(stat(src, &a), 0);
    assert_int_equal(stat(h5, &b), 0);
    assert_int_equal(a.st_size, b.st_size);
    assert_int_equal(stat(onnx, &b), 0);
    assert_true(b.st_size > 1000);
    /* Not a model: refused, nothing written. */
    assert_int_equal(tsr_export_file(onnx, TSR_EXPORT_ONNX, h5), TSR_EDATA);
    assert_non_null(strstr(tsr_last_error(), "m.onnx"));
    char bad[4300];
    snprintf(bad, sizeof bad, "%s/no/such/dir/out.onnx", dir);
    assert_int_equal(tsr_export_file(src, TSR_EXPORT_ONNX, bad), TSR_EIO);
    assert_int_equal(tsr_export_format_parse("onnx"), TSR_EXPORT_ONNX);
    assert_int_equal(tsr_export_format_parse("h5"), TSR_EXPORT_HDF5);
    assert_int_equal(tsr_export_format_parse("pt"), -1);
    assert_int_equal(tsr_export_format_parse(NULL), -1);
    tsr_model_destroy(m);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_onnx_relu_softmax),
        cmocka_unit_test(test_onnx_tanh_mse),
        cmocka_unit_test(test_onnx_sigmoid),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
