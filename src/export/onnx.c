/* SPDX-License-Identifier: BSD-3-Clause */
/* ONNX export through protobuf-c and tessera's own subset of onnx.proto:
 * the model's layers in order (onnx_layers.c), residual blocks as Add, and
 * the output transform predict applies (Softmax(axis=1) for cross-entropy,
 * Sigmoid for binary cross-entropy), so the graph's output equals
 * tsr_model_predict's. The input stays the flat row [N, D] that /predict
 * takes; image models Reshape it to [N, C, H, W] (rows are channels first). */
#include "export/onnx_layers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { IR_VERSION = 7, OPSET = 13 };

/* A graph input or output, float [N, width]. */
static Onnx__ValueInfoProto *value_info(tsr_onnx_t *b, const char *name, int64_t width)
{
    struct vi {
        Onnx__ValueInfoProto v;
        Onnx__TypeProto type;
        Onnx__TypeProto__Tensor tensor;
        Onnx__TensorShapeProto shape;
        Onnx__TensorShapeProto__Dimension dim[2], *dimp[2];
    } *p = onnx_alloc(b, sizeof *p);
    if (!p)
        return NULL;
    onnx__value_info_proto__init(&p->v);
    onnx__type_proto__init(&p->type);
    onnx__type_proto__tensor__init(&p->tensor);
    onnx__tensor_shape_proto__init(&p->shape);
    for (int d = 0; d < 2; d++) {
        onnx__tensor_shape_proto__dimension__init(&p->dim[d]);
        p->dimp[d] = &p->dim[d];
    }
    p->dim[0].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    p->dim[0].dim_param = "N"; /* any batch size */
    p->dim[1].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    p->dim[1].dim_value = width;
    p->shape.n_dim = 2;
    p->shape.dim = p->dimp;
    p->tensor.has_elem_type = 1;
    p->tensor.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    p->tensor.shape = &p->shape;
    p->type.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    p->type.tensor_type = &p->tensor;
    p->v.name = onnx_printf(b, "%s", name);
    p->v.type = &p->type;
    return &p->v;
}

/* The nodes of every layer, ending in the value "output". */
static int graph_nodes(tsr_onnx_t *b, tsr_model_t *m, float *tmp)
{
    const tsr_model_spec_t *s = tsr_model_spec(m);
    int L = tsr_model_nlayers(m), depth = 0;
    onnx_val_t v = {"input", 0}, kept[TSR_MODEL_MAX_LAYERS];
    tsr_shape_t in = s->input;
    b->layer = 0;
    if (in.h * in.w > 1 && !(L > 0 && strcmp(tsr_model_layer(m, 0)->kind->name, "embed") == 0)) {
        v.name =
            onnx_op2(b, "Reshape", v.name, onnx_int64s(b, "input_shape", (const int64_t[]){-1, in.c, in.h, in.w}, 4));
        v.rank4 = 1;
    }
    for (int i = 0; i < L && !b->rc; i++) {
        const tsr_layer_t *l = tsr_model_layer(m, i);
        b->layer = i;
        if (strcmp(l->kind->name, "res") == 0) {
            kept[depth++] = v;
        } else if (strcmp(l->kind->name, "res_end") == 0) {
            onnx_val_t k = depth > 0 ? kept[--depth] : v;
            if (k.rank4 != v.rank4) { /* both h = w = 1 here (the shapes agree) */
                onnx_to_flat(b, &k, l->out);
                onnx_to_flat(b, &v, l->out);
            }
            const char *ins[2] = {v.name, k.name}, *out = onnx_printf(b, "layer_%d.out", i);
            tsr_onnx_node(b, "Add", ins, 2, out);
            v.name = out;
        } else {
            onnx_layer(b, l, &v, onnx_printf(b, "layer_%d.out", i), tmp);
        }
    }
    b->layer = L;
    onnx_to_flat(b, &v, L ? tsr_model_layer(m, L - 1)->out : in);
    if (s->loss == TSR_LOSS_XENT) {
        tsr_onnx_node(b, "Softmax", &v.name, 1, "output");
        tsr_onnx_attr_int(b, "axis", 1);
    } else if (s->loss == TSR_LOSS_BCE) {
        tsr_onnx_node(b, "Sigmoid", &v.name, 1, "output");
    } else if (onnx_last(b) && strcmp(onnx_last(b)->output[0], v.name) == 0) {
        onnx_last(b)->output[0] = onnx_printf(b, "output"); /* the last value is the last node's */
    } else {
        tsr_onnx_node(b, "Identity", &v.name, 1, "output");
    }
    return b->rc;
}

/* The model message around the graph, packed into *buf. */
static int pack(tsr_onnx_t *b, const tsr_model_t *m, const char *name, unsigned char **buf, size_t *len)
{
    const tsr_model_spec_t *s = tsr_model_spec(m);
    Onnx__ValueInfoProto *io[2] = {value_info(b, "input", (int64_t)tsr_model_input_size(m)),
                                   value_info(b, "output", (int64_t)tsr_model_output_size(m))};
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset, *opsets[1] = {&opset};
    Onnx__StringStringEntryProto props[2], *propp[2] = {&props[0], &props[1]};
    Onnx__ModelProto model;
    char *spec_json = onnx_alloc(b, 65536);
    if (b->rc)
        return b->rc;
    if (tsr_model_spec_json(s, spec_json, 65536) < 0)
        return TSR_EINVAL;
    onnx__graph_proto__init(&graph);
    graph.name = (char *)(name && name[0] ? name : "tessera");
    graph.n_node = b->nnode;
    graph.node = b->node;
    graph.n_initializer = b->ninit;
    graph.initializer = b->init;
    graph.n_input = 1;
    graph.input = &io[0];
    graph.n_output = 1;
    graph.output = &io[1];
    onnx__operator_set_id_proto__init(&opset);
    opset.domain = "";
    opset.has_version = 1;
    opset.version = OPSET;
    for (int k = 0; k < 2; k++)
        onnx__string_string_entry_proto__init(&props[k]);
    props[0].key = "tessera.spec";
    props[0].value = spec_json;
    props[1].key = "tessera.output";
    props[1].value = s->loss == TSR_LOSS_XENT  ? "softmax probabilities"
                     : s->loss == TSR_LOSS_BCE ? "sigmoid probabilities"
                                               : "regression outputs";
    onnx__model_proto__init(&model);
    model.has_ir_version = 1;
    model.ir_version = IR_VERSION;
    model.n_opset_import = 1;
    model.opset_import = opsets;
    model.producer_name = "tessera";
    model.producer_version = TSR_VERSION;
    model.has_model_version = 1;
    model.model_version = 1;
    model.graph = &graph;
    model.n_metadata_props = 2;
    model.metadata_props = propp;
    size_t n = onnx__model_proto__get_packed_size(&model);
    unsigned char *out = malloc(n ? n : 1);
    if (!out)
        return tsr_error_set(TSR_ENOMEM, "export: out of memory for %zu bytes of ONNX", n);
    *len = onnx__model_proto__pack(&model, out);
    *buf = out;
    return TSR_OK;
}

int tsr_export_onnx_buffer(const tsr_model_t *cm, const char *name, unsigned char **buf, size_t *len)
{
    tsr_model_t *m = (tsr_model_t *)cm; /* only read: tsr_model_params has no const form */
    tsr_onnx_t b = {0};
    size_t most = 1;
    for (int i = 0; i < tsr_model_nlayers(m); i++)
        if (tsr_model_layer(m, i)->nparams > most)
            most = tsr_model_layer(m, i)->nparams;
    float *tmp = onnx_alloc(&b, most * sizeof *tmp);
    int rc = tmp ? graph_nodes(&b, m, tmp) : b.rc;
    if (rc == TSR_OK)
        rc = pack(&b, m, name, buf, len);
    onnx_build_free(&b);
    return rc;
}
