/* ONNX export through protobuf-c and tessera's own subset of onnx.proto.
 * Layer i becomes Gemm(x, W_i, b_i, transB=1) — W is stored [out, in] like
 * ONNX's B^T — then the hidden activation; cross-entropy models end in
 * Softmax(axis=1) so the graph's output equals tsr_model_predict's. */
#include "tessera/export.h"
#include "tessera/error.h"

#include "onnx.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { IR_VERSION = 7, OPSET = 13, MAXL = TSR_MODEL_MAX_LAYERS, MAXN = 2 * TSR_MODEL_MAX_LAYERS + 2 };

/* Everything one model's message points at, so nothing needs freeing
 * piecemeal: the message is built in this struct and packed. */
typedef struct onnx_build {
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset, *opsets[1];
    Onnx__StringStringEntryProto props[2], *propp[2];
    Onnx__TensorProto init[2 * MAXL], *initp[2 * MAXL];
    int64_t dims[2 * MAXL][2];
    Onnx__NodeProto node[MAXN], *nodep[MAXN];
    char *node_in[MAXN][3], *node_out[MAXN];
    Onnx__AttributeProto trans_b[MAXL], *trans_bp[MAXL], axis, *axisp[1];
    char names[2 * MAXL + 2 * MAXN][48];
    Onnx__ValueInfoProto io[2], *inp[1], *outp[1];
    Onnx__TypeProto type[2];
    Onnx__TypeProto__Tensor ttype[2];
    Onnx__TensorShapeProto shape[2];
    Onnx__TensorShapeProto__Dimension dim[2][2], *dimp[2][2];
    char spec_json[65536];
} onnx_build_t;

static const char *act_op(tsr_act_t a)
{
    switch (a) {
    case TSR_ACT_RELU:
        return "Relu";
    case TSR_ACT_TANH:
        return "Tanh";
    case TSR_ACT_SIGMOID:
        return "Sigmoid";
    default:
        return NULL;
    }
}

static void value_info(onnx_build_t *b, int k, char *name, int64_t width)
{
    Onnx__ValueInfoProto *v = &b->io[k];
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(&b->type[k]);
    onnx__type_proto__tensor__init(&b->ttype[k]);
    onnx__tensor_shape_proto__init(&b->shape[k]);
    for (int d = 0; d < 2; d++) {
        Onnx__TensorShapeProto__Dimension *dm = &b->dim[k][d];
        onnx__tensor_shape_proto__dimension__init(dm);
        if (d == 0) {
            dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dm->dim_param = "N"; /* any batch size */
        } else {
            dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dm->dim_value = width;
        }
        b->dimp[k][d] = dm;
    }
    b->shape[k].n_dim = 2;
    b->shape[k].dim = b->dimp[k];
    b->ttype[k].has_elem_type = 1;
    b->ttype[k].elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    b->ttype[k].shape = &b->shape[k];
    b->type[k].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    b->type[k].tensor_type = &b->ttype[k];
    v->name = name;
    v->type = &b->type[k];
}

static void tensor(onnx_build_t *b, int k, char *name, const float *data, int64_t d0, int64_t d1)
{
    Onnx__TensorProto *t = &b->init[k];
    onnx__tensor_proto__init(t);
    b->dims[k][0] = d0;
    b->dims[k][1] = d1;
    t->n_dims = d1 > 0 ? 2 : 1;
    t->dims = b->dims[k];
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->name = name;
    /* raw_data is little-endian float32, which is this machine's layout. */
    t->has_raw_data = 1;
    t->raw_data.data = (uint8_t *)data;
    t->raw_data.len = (size_t)(d0 * (d1 > 0 ? d1 : 1)) * sizeof(float);
    b->initp[k] = t;
}

static Onnx__NodeProto *node(onnx_build_t *b, int k, const char *op, char *name, char *out)
{
    Onnx__NodeProto *n = &b->node[k];
    onnx__node_proto__init(n);
    n->op_type = (char *)op;
    n->name = name;
    n->input = b->node_in[k];
    b->node_out[k] = out;
    n->n_output = 1;
    n->output = &b->node_out[k];
    b->nodep[k] = n;
    return n;
}

int tsr_export_onnx_buffer(const tsr_model_t *cm, const char *name, unsigned char **buf, size_t *len)
{
    tsr_model_t *m = (tsr_model_t *)cm; /* only read: tsr_model_params has no const form */
    const tsr_model_spec_t *s = tsr_model_spec(m);
    int L = tsr_model_nlayers(m), nn = 0, nm = 0, ni = 0, nd = 0;
    onnx_build_t *b = calloc(1, sizeof *b);
    if (!b)
        return tsr_error_set(TSR_ENOMEM, "export: out of memory");
    for (int i = 0; i < L; i++) {
        const tsr_layer_t *l = tsr_model_layer(m, i);
        if (strcmp(l->kind->name, "dense") && !act_op(tsr_act_parse(l->kind->name) > 0 ? (tsr_act_t)tsr_act_parse(l->kind->name) : TSR_ACT_NONE)) {
            free(b);
            return tsr_error_set(TSR_ENOTSUP, "export: layer %d (%s) has no ONNX form yet", i, l->kind->name);
        }
    }
#define NAME(...) (snprintf(b->names[nm], sizeof b->names[nm], __VA_ARGS__), b->names[nm++])
    char *x = NAME("input");
    for (int i = 0; i < L; i++) {
        const tsr_layer_t *l = tsr_model_layer(m, i);
        int last = i == L - 1, softmax = last && s->loss == TSR_LOSS_XENT;
        char *y = softmax ? NAME("layer_%d.out", i) : last ? NAME("output") : NAME("layer_%d.out", i);
        if (strcmp(l->kind->name, "dense") == 0) {
            size_t in = tsr_model_input_size(m), out = (size_t)l->out.c;
            in = (size_t)l->in.c * (size_t)l->in.h * (size_t)l->in.w;
            const float *w = l->params;
            char *wn = NAME("layer_%d.weight", i), *bn = NAME("layer_%d.bias", i);
            tensor(b, ni++, wn, w, (int64_t)out, (int64_t)in);
            tensor(b, ni++, bn, w + in * out, (int64_t)out, 0);
            Onnx__NodeProto *g = node(b, nn, "Gemm", NAME("gemm_%d", i), y);
            b->node_in[nn][0] = x;
            b->node_in[nn][1] = wn;
            b->node_in[nn][2] = bn;
            g->n_input = 3;
            onnx__attribute_proto__init(&b->trans_b[nd]);
            b->trans_b[nd].name = "transB";
            b->trans_b[nd].has_type = 1;
            b->trans_b[nd].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
            b->trans_b[nd].has_i = 1;
            b->trans_b[nd].i = 1;
            b->trans_bp[nd] = &b->trans_b[nd];
            g->n_attribute = 1;
            g->attribute = &b->trans_bp[nd];
            nd++;
        } else {
            const char *op = act_op((tsr_act_t)tsr_act_parse(l->kind->name));
            Onnx__NodeProto *a = node(b, nn, op, NAME("%s_%d", op, i), y);
            b->node_in[nn][0] = x;
            a->n_input = 1;
        }
        nn++;
        x = y;
        if (softmax) {
            y = NAME("output");
            Onnx__NodeProto *a = node(b, nn, "Softmax", NAME("softmax_%d", i), y);
            b->node_in[nn][0] = x;
            a->n_input = 1;
            onnx__attribute_proto__init(&b->axis);
            b->axis.name = "axis";
            b->axis.has_type = 1;
            b->axis.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
            b->axis.has_i = 1;
            b->axis.i = 1;
            b->axisp[0] = &b->axis;
            a->n_attribute = 1;
            a->attribute = b->axisp;
            nn++;
            x = y;
        }
    }
    value_info(b, 0, "input", (int64_t)tsr_model_input_size(m));
    value_info(b, 1, "output", (int64_t)tsr_model_output_size(m));
    b->inp[0] = &b->io[0];
    b->outp[0] = &b->io[1];

    onnx__graph_proto__init(&b->graph);
    b->graph.name = (char *)(name && name[0] ? name : "tessera");
    b->graph.n_node = (size_t)nn;
    b->graph.node = b->nodep;
    b->graph.n_initializer = (size_t)ni;
    b->graph.initializer = b->initp;
    b->graph.n_input = 1;
    b->graph.input = b->inp;
    b->graph.n_output = 1;
    b->graph.output = b->outp;

    onnx__operator_set_id_proto__init(&b->opset);
    b->opset.domain = "";
    b->opset.has_version = 1;
    b->opset.version = OPSET;
    b->opsets[0] = &b->opset;
    if (tsr_model_spec_json(s, b->spec_json, sizeof b->spec_json) < 0) {
        free(b);
        return TSR_EINVAL;
    }
    for (int k = 0; k < 2; k++) {
        onnx__string_string_entry_proto__init(&b->props[k]);
        b->propp[k] = &b->props[k];
    }
    b->props[0].key = "tessera.spec";
    b->props[0].value = b->spec_json;
    b->props[1].key = "tessera.output";
    b->props[1].value = s->loss == TSR_LOSS_XENT ? "softmax probabilities" : "regression outputs";

    onnx__model_proto__init(&b->model);
    b->model.has_ir_version = 1;
    b->model.ir_version = IR_VERSION;
    b->model.n_opset_import = 1;
    b->model.opset_import = b->opsets;
    b->model.producer_name = "tessera";
    b->model.producer_version = TSR_VERSION;
    b->model.has_model_version = 1;
    b->model.model_version = 1;
    b->model.graph = &b->graph;
    b->model.n_metadata_props = 2;
    b->model.metadata_props = b->propp;
#undef NAME
    size_t n = onnx__model_proto__get_packed_size(&b->model);
    unsigned char *out = malloc(n ? n : 1);
    if (!out) {
        free(b);
        return tsr_error_set(TSR_ENOMEM, "export: out of memory for %zu bytes of ONNX", n);
    }
    *len = onnx__model_proto__pack(&b->model, out);
    *buf = out;
    free(b);
    return TSR_OK;
}
