/* SPDX-License-Identifier: BSD-3-Clause */
/* The ONNX builder: nodes, attributes and initializers added one call at a
 * time, each copied into memory the builder owns, so built-in layers and
 * plugins' onnx hooks use the same few calls and nothing is freed
 * piecemeal. The first failure sticks (b->rc) and later calls do nothing. */
#include "export/onnx_build.h"
#include "tessera/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Zeroed memory owned by the builder, or NULL (b->rc set). */
void *onnx_alloc(tsr_onnx_t *b, size_t size)
{
    if (b->rc)
        return NULL;
    if (b->nblk == b->cblk) {
        size_t c = b->cblk ? 2 * b->cblk : 64;
        void **p = realloc(b->blk, c * sizeof *p);
        if (!p)
            goto oom;
        b->blk = p;
        b->cblk = c;
    }
    void *p = calloc(1, size ? size : 1);
    if (!p)
        goto oom;
    b->blk[b->nblk++] = p;
    return p;
oom:
    b->rc = tsr_error_set(TSR_ENOMEM, "export: out of memory building the ONNX graph (%zu bytes)", size);
    return NULL;
}

/* Appends p to a growing array of pointers. */
static int push(tsr_onnx_t *b, void ***arr, size_t *n, size_t *cap, void *p)
{
    if (b->rc)
        return b->rc;
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        void **q = realloc(*arr, c * sizeof *q);
        if (!q)
            return b->rc = tsr_error_set(TSR_ENOMEM, "export: out of memory building the ONNX graph");
        *arr = q;
        *cap = c;
    }
    (*arr)[(*n)++] = p;
    return TSR_OK;
}

void onnx_build_free(tsr_onnx_t *b)
{
    for (size_t i = 0; i < b->nblk; i++)
        free(b->blk[i]);
    free(b->blk);
    free(b->node);
    free(b->init);
}

char *onnx_printf(tsr_onnx_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? onnx_alloc(b, (size_t)n + 1) : NULL;
    if (!s)
        return "";
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

const char *tsr_onnx_value(tsr_onnx_t *b, const char *what)
{
    return onnx_printf(b, "layer_%d.%s_%d", b->layer, what, b->tmp++);
}

Onnx__NodeProto *onnx_last(tsr_onnx_t *b) { return b->nnode ? b->node[b->nnode - 1] : NULL; }

int tsr_onnx_node(tsr_onnx_t *b, const char *op, const char *const *in, int nin, const char *out)
{
    Onnx__NodeProto *n = onnx_alloc(b, sizeof *n);
    char **ins = onnx_alloc(b, (size_t)(nin > 0 ? nin : 1) * sizeof *ins), **outs = onnx_alloc(b, sizeof *outs);
    if (!n || !ins || !outs)
        return b->rc;
    onnx__node_proto__init(n);
    n->op_type = onnx_printf(b, "%s", op);
    n->name = onnx_printf(b, "layer_%d.%s_%zu", b->layer, op, b->nnode);
    for (int i = 0; i < nin; i++)
        ins[i] = onnx_printf(b, "%s", in[i]);
    outs[0] = onnx_printf(b, "%s", out);
    n->n_input = (size_t)nin;
    n->input = ins;
    n->n_output = 1;
    n->output = outs;
    return push(b, (void ***)&b->node, &b->nnode, &b->cnode, n);
}

/* A new attribute on the last node. */
static Onnx__AttributeProto *attr(tsr_onnx_t *b, const char *name, Onnx__AttributeProto__AttributeType type)
{
    Onnx__NodeProto *n = onnx_last(b);
    if (!b->rc && !n)
        b->rc = tsr_error_set(TSR_EINVAL, "export: attribute %s given before any node", name);
    Onnx__AttributeProto *a = onnx_alloc(b, sizeof *a);
    Onnx__AttributeProto **list = onnx_alloc(b, (n ? n->n_attribute + 1 : 1) * sizeof *list);
    if (!a || !list)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = onnx_printf(b, "%s", name);
    a->has_type = 1;
    a->type = type;
    if (n->n_attribute)
        memcpy(list, n->attribute, n->n_attribute * sizeof *list);
    list[n->n_attribute++] = a;
    n->attribute = list;
    return a;
}

int tsr_onnx_attr_int(tsr_onnx_t *b, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) {
        a->has_i = 1;
        a->i = v;
    }
    return b->rc;
}

int tsr_onnx_attr_float(tsr_onnx_t *b, const char *name, float v)
{
    Onnx__AttributeProto *a = attr(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) {
        a->has_f = 1;
        a->f = v;
    }
    return b->rc;
}

int tsr_onnx_attr_ints(tsr_onnx_t *b, const char *name, const int64_t *v, int n)
{
    Onnx__AttributeProto *a = attr(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *c = onnx_alloc(b, (size_t)n * sizeof *c);
    if (a && c) {
        memcpy(c, v, (size_t)n * sizeof *c);
        a->n_ints = (size_t)n;
        a->ints = c;
    }
    return b->rc;
}

/* An initializer of n elements of size esize (raw little-endian data, this
 * machine's layout). */
static const char *initializer(tsr_onnx_t *b, const char *what, int type, const void *data, size_t esize,
                               const int64_t *dims, int ndims)
{
    size_t count = 1;
    for (int i = 0; i < ndims; i++)
        count *= (size_t)dims[i];
    Onnx__TensorProto *t = onnx_alloc(b, sizeof *t);
    int64_t *d = onnx_alloc(b, (size_t)(ndims > 0 ? ndims : 1) * sizeof *d);
    void *copy = onnx_alloc(b, count * esize);
    char *name = onnx_printf(b, "layer_%d.%s", b->layer, what);
    if (!t || !d || !copy)
        return NULL;
    onnx__tensor_proto__init(t);
    memcpy(d, dims, (size_t)ndims * sizeof *d);
    memcpy(copy, data, count * esize);
    t->n_dims = (size_t)ndims;
    t->dims = d;
    t->has_data_type = 1;
    t->data_type = type;
    t->name = name;
    t->has_raw_data = 1;
    t->raw_data.data = copy;
    t->raw_data.len = count * esize;
    return push(b, (void ***)&b->init, &b->ninit, &b->cinit, t) ? NULL : name;
}

const char *tsr_onnx_floats(tsr_onnx_t *b, const char *what, const float *data, const int64_t *dims, int ndims)
{
    return initializer(b, what, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, data, sizeof(float), dims, ndims);
}

const char *onnx_int64s(tsr_onnx_t *b, const char *what, const int64_t *v, int n)
{
    int64_t dims[1] = {n};
    return initializer(b, what, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, v, sizeof *v, dims, 1);
}

const char *onnx_scalar(tsr_onnx_t *b, const char *what, float v)
{
    int64_t one[1] = {1};
    return tsr_onnx_floats(b, what, &v, one, 1);
}

const char *onnx_op1(tsr_onnx_t *b, const char *op, const char *x)
{
    const char *y = tsr_onnx_value(b, op);
    tsr_onnx_node(b, op, &x, 1, y);
    return y;
}

const char *onnx_op2(tsr_onnx_t *b, const char *op, const char *x, const char *y)
{
    const char *z = tsr_onnx_value(b, op), *in[2] = {x, y};
    tsr_onnx_node(b, op, in, 2, z);
    return z;
}
