/* SPDX-License-Identifier: BSD-3-Clause */
/* The model description: the [model] layers grammar, each layer as text,
 * the graph as JSON (model files, checkpoints, exports) and back, and the
 * comparison that names the first layer where two graphs differ.
 *
 *   layers := item*            items separated by spaces (or commas)
 *   item   := NAME [ "(" arg { "," arg } ")" ] | "res" "{" layers "}"
 *   arg    := NUMBER | NAME "=" NUMBER
 * Positional arguments fill a kind's arguments in order, named ones by
 * name; arguments with defaults may be left out. */
#include "tessera/model.h"
#include "model/internal.h"
#include "model/layers/layers.h"
#include "tessera/error.h"
#include "common/text.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A kind's argument list split into names and defaults (NAN: required). */
typedef struct {
    int n;
    char name[TSR_LAYER_MAX_ARGS][24];
    double def[TSR_LAYER_MAX_ARGS];
} argdef_t;

static int argdefs(const tsr_layer_kind_t *k, argdef_t *d)
{
    d->n = 0;
    const char *p = k->args ? k->args : "";
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        if (d->n == TSR_LAYER_MAX_ARGS)
            return tsr_error_set(TSR_EINVAL, "layer kind %s: more than %d arguments", k->name, TSR_LAYER_MAX_ARGS);
        size_t len = strcspn(p, " =");
        if (len == 0 || len >= sizeof d->name[0])
            return tsr_error_set(TSR_EINVAL, "layer kind %s: bad argument list \"%s\"", k->name, k->args);
        memcpy(d->name[d->n], p, len);
        d->name[d->n][len] = '\0';
        p += len;
        d->def[d->n] = NAN;
        if (*p == '=') {
            char *end;
            d->def[d->n] = strtod(p + 1, &end);
            p = end;
        }
        d->n++;
    }
    return TSR_OK;
}

static void usage(const tsr_layer_kind_t *k, const argdef_t *d, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "%s(", k->name);
    for (int i = 0; i < d->n && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, isnan(d->def[i]) ? "%s%s" : "%s%s=%g", i ? ", " : "", d->name[i],
                              d->def[i]);
    if (n < len)
        snprintf(buf + n, len - n, ")");
}

typedef struct {
    const char *text, *p;
    tsr_model_spec_t *s;
} parser_t;

static int fail(parser_t *ps, const char *fmt, const char *what)
{
    char near[48];
    snprintf(near, sizeof near, "%.40s", ps->p);
    return tsr_error_set(TSR_EINVAL, "[model] layers: %s at character %d (\"%s%s\")", what ? what : fmt,
                         (int)(ps->p - ps->text) + 1, near, strlen(ps->p) > 40 ? "..." : "");
}

static void skip_space(parser_t *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == ',' || *ps->p == '\n' || *ps->p == '\r')
        ps->p++;
}

static int name_at(parser_t *ps, char *buf, size_t len)
{
    size_t n = 0;
    while (isalnum((unsigned char)ps->p[n]) || ps->p[n] == '_')
        n++;
    if (n == 0 || n >= len)
        return -1;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)tolower((unsigned char)ps->p[i]);
    buf[n] = '\0';
    ps->p += n;
    return 0;
}

static int add_layer(parser_t *ps, const char *kind)
{
    if (ps->s->nlayers == TSR_MODEL_MAX_LAYERS)
        return fail(ps, NULL, "more layers than the limit of 96");
    tsr_layer_spec_t *l = &ps->s->layer[ps->s->nlayers++];
    memset(l, 0, sizeof *l);
    snprintf(l->kind, sizeof l->kind, "%s", kind);
    return TSR_OK;
}

static int parse_args(parser_t *ps, const tsr_layer_kind_t *k, tsr_layer_spec_t *l)
{
    argdef_t d;
    char use[160], msg[320];
    int rc = argdefs(k, &d), set[TSR_LAYER_MAX_ARGS] = {0}, pos = 0;
    if (rc)
        return rc;
    usage(k, &d, use, sizeof use);
    if (*ps->p == '(') {
        ps->p++;
        for (;;) {
            while (*ps->p == ' ')
                ps->p++;
            if (*ps->p == ')' && pos == 0 && !set[0])
                break;
            int idx = pos;
            char an[24];
            const char *save = ps->p;
            if (isalpha((unsigned char)*ps->p) && name_at(ps, an, sizeof an) == 0 && *ps->p == '=') {
                ps->p++;
                idx = -1;
                for (int i = 0; i < d.n; i++)
                    if (strcmp(d.name[i], an) == 0)
                        idx = i;
                if (idx < 0) {
                    const char *best = NULL;
                    int bd = 99;
                    for (int i = 0; i < d.n; i++)
                        if (tsr_text_distance(an, d.name[i]) < bd)
                            bd = tsr_text_distance(an, d.name[i]), best = d.name[i];
                    ps->p = save;
                    snprintf(msg, sizeof msg, "%s has no argument \"%s\"%s%s%s; expected %s", k->name, an,
                             best ? " (did you mean " : "", best ? best : "", best ? "?)" : "", use);
                    return fail(ps, NULL, msg);
                }
            } else {
                ps->p = save;
                if (pos >= d.n || (pos > 0 && set[pos])) {
                    snprintf(msg, sizeof msg, "too many arguments for %s; expected %s", k->name, use);
                    return fail(ps, NULL, msg);
                }
                pos++;
            }
            if (set[idx]) {
                snprintf(msg, sizeof msg, "%s: %s given twice", k->name, d.name[idx]);
                return fail(ps, NULL, msg);
            }
            char *end;
            double v = strtod(ps->p, &end);
            if (end == ps->p || !isfinite(v)) {
                snprintf(msg, sizeof msg, "%s: expected a number for %s; expected %s", k->name, d.name[idx], use);
                return fail(ps, NULL, msg);
            }
            ps->p = end;
            l->arg[idx] = v;
            set[idx] = 1;
            while (*ps->p == ' ')
                ps->p++;
            if (*ps->p == ',') {
                ps->p++;
                continue;
            }
            if (*ps->p == ')')
                break;
            snprintf(msg, sizeof msg, "%s: expected , or ) after an argument", k->name);
            return fail(ps, NULL, msg);
        }
        ps->p++;
    }
    for (int i = 0; i < d.n; i++) {
        if (set[i])
            continue;
        if (isnan(d.def[i])) {
            snprintf(msg, sizeof msg, "%s needs %s; expected %s", k->name, d.name[i], use);
            return fail(ps, NULL, msg);
        }
        l->arg[i] = d.def[i];
    }
    return TSR_OK;
}

static int parse_items(parser_t *ps, int depth)
{
    char name[40], msg[200];
    for (;;) {
        skip_space(ps);
        if (!*ps->p)
            return depth ? fail(ps, NULL, "a res{ block is not closed with }") : TSR_OK;
        if (*ps->p == '}') {
            if (!depth)
                return fail(ps, NULL, "} without a res{ before it");
            ps->p++;
            return add_layer(ps, "res_end");
        }
        if (name_at(ps, name, sizeof name))
            return fail(ps, NULL, "expected a layer name");
        if (strcmp(name, "res") == 0) {
            while (*ps->p == ' ')
                ps->p++;
            if (*ps->p != '{')
                return fail(ps, NULL, "expected { after res");
            ps->p++;
            int rc = add_layer(ps, "res");
            if (rc || (rc = parse_items(ps, depth + 1)))
                return rc;
            continue;
        }
        const tsr_layer_kind_t *k = tsr_layer_find(name);
        if (!k || strcmp(name, "res_end") == 0) {
            const char *near = layer_nearest(name);
            ps->p -= strlen(name);
            snprintf(msg, sizeof msg, "unknown layer \"%s\"%s%s%s", name, near ? " (did you mean " : "",
                     near ? near : "", near ? "?)" : "");
            return fail(ps, NULL, msg);
        }
        int rc = add_layer(ps, name);
        if (rc || (rc = parse_args(ps, k, &ps->s->layer[ps->s->nlayers - 1])))
            return rc;
    }
}

int tsr_model_parse(const char *text, tsr_model_spec_t *s)
{
    parser_t ps = {text, text, s};
    s->nlayers = 0;
    int rc = parse_items(&ps, 0);
    if (!rc && s->nlayers == 0)
        rc = tsr_error_set(TSR_EINVAL, "[model] layers is empty; expected layers such as \"dense(128) relu "
                                       "dense(10)\"");
    return rc;
}

void tsr_model_spec_mlp(tsr_model_spec_t *s, const size_t *sizes, int n, tsr_act_t act, tsr_loss_t loss)
{
    memset(s, 0, sizeof *s);
    s->input = (tsr_shape_t){(int)sizes[0], 1, 1};
    s->loss = loss;
    for (int i = 0; i < n && s->nlayers < TSR_MODEL_MAX_LAYERS - 1; i++) {
        tsr_layer_spec_t *l = &s->layer[s->nlayers++];
        snprintf(l->kind, sizeof l->kind, "dense");
        l->arg[0] = (double)sizes[i + 1];
        if (i < n - 1 && act != TSR_ACT_NONE)
            snprintf(s->layer[s->nlayers++].kind, sizeof l->kind, "%s", tsr_act_name(act));
    }
}

void tsr_layer_spec_text(const tsr_layer_spec_t *l, char *buf, size_t len)
{
    const tsr_layer_kind_t *k = tsr_layer_find(l->kind);
    argdef_t d;
    if (strcmp(l->kind, "res") == 0) {
        snprintf(buf, len, "res{");
        return;
    }
    if (strcmp(l->kind, "res_end") == 0) {
        snprintf(buf, len, "}");
        return;
    }
    if (!k || argdefs(k, &d) || d.n == 0) {
        snprintf(buf, len, "%s", l->kind);
        return;
    }
    size_t n = (size_t)snprintf(buf, len, "%s(", l->kind);
    int first = 1;
    for (int i = 0; i < d.n && n < len; i++) {
        if (isnan(d.def[i]))
            n += (size_t)snprintf(buf + n, len - n, "%s%g", first ? "" : ",", l->arg[i]);
        else if (l->arg[i] != d.def[i])
            n += (size_t)snprintf(buf + n, len - n, "%s%s=%g", first ? "" : ",", d.name[i], l->arg[i]);
        else
            continue;
        first = 0;
    }
    if (n < len)
        snprintf(buf + n, len - n, ")");
    if (first && n < len && n > 0)
        buf[n - 1] = '\0'; /* no arguments shown: no parentheses */
}

int tsr_model_spec_json(const tsr_model_spec_t *s, char *buf, size_t len)
{
    /* Shapes come from the kinds' shape functions, without allocating. */
    tsr_model_t *tmp = calloc(1, sizeof *tmp);
    int shapes = 0;
    if (tmp) {
        tmp->spec = *s;
        tmp->nl = s->nlayers;
        tmp->max_batch = 1;
        shapes = model_build_layers(tmp) == TSR_OK;
        tsr_error_clear();
    }
    size_t n = 0;
    char text[96];
#define PUT(...) n += (size_t)snprintf(buf + n, n < len ? len - n : 0, __VA_ARGS__)
    PUT("{\"graph\":2,\"input\":[%d,%d,%d],\"loss\":\"%s\"", s->input.c, s->input.h, s->input.w,
        tsr_loss_name(s->loss));
    if (s->label_smoothing != 0)
        PUT(",\"label_smoothing\":%.9g", s->label_smoothing);
    if (s->huber_delta != 0)
        PUT(",\"huber_delta\":%.9g", s->huber_delta);
    if (s->sync_bn)
        PUT(",\"sync_bn\":true");
    if (s->nclass_weights) {
        PUT(",\"class_weights\":[");
        for (int i = 0; i < s->nclass_weights; i++)
            PUT("%s%.9g", i ? "," : "", s->class_weight[i]);
        PUT("]");
    }
    PUT(",\"layers\":[");
    for (int i = 0; i < s->nlayers; i++) {
        const tsr_layer_spec_t *l = &s->layer[i];
        const tsr_layer_kind_t *k = tsr_layer_find(l->kind);
        argdef_t d = {0};
        if (k)
            argdefs(k, &d);
        tsr_layer_spec_text(l, text, sizeof text);
        PUT("%s{\"kind\":\"%s\",\"text\":\"%s\",\"args\":{", i ? "," : "", l->kind, text);
        for (int a = 0; a < d.n; a++)
            PUT("%s\"%s\":%.17g", a ? "," : "", d.name[a], l->arg[a]);
        PUT("}");
        if (shapes) {
            tsr_shape_t o = tmp->layer[i].out;
            PUT(",\"out\":[%d,%d,%d],\"params\":%zu", o.c, o.h, o.w, tmp->layer[i].nparams);
        }
        PUT("}");
    }
    PUT("]}");
#undef PUT
    free(tmp);
    if (n >= len)
        return tsr_error_set(TSR_EINVAL, "model: graph JSON longer than %zu bytes", len);
    return (int)n;
}

/* The JSON tessera wrote before graphs: {"layers":[{"type":"dense","in":
 * I,"out":O,"activation":A}, ...],"loss":L}. */
static int from_mlp_json(json_t *root, tsr_model_spec_t *s)
{
    json_t *layers = json_object_get(root, "layers");
    size_t sizes[TSR_MODEL_MAX_LAYERS + 1], n = json_array_size(layers);
    if (n == 0 || n > TSR_MODEL_MAX_LAYERS / 2)
        return tsr_error_set(TSR_EDATA, "model JSON: no layers");
    const char *act = "none";
    for (size_t i = 0; i < n; i++) {
        json_t *l = json_array_get(layers, i);
        sizes[i] = (size_t)json_integer_value(json_object_get(l, "in"));
        sizes[i + 1] = (size_t)json_integer_value(json_object_get(l, "out"));
        if (i == 0 && json_string_value(json_object_get(l, "activation")))
            act = json_string_value(json_object_get(l, "activation"));
    }
    int a = tsr_act_parse(act);
    const char *loss = json_string_value(json_object_get(root, "loss"));
    tsr_model_spec_mlp(s, sizes, (int)n, a > 0 ? (tsr_act_t)a : TSR_ACT_NONE,
                       loss && strcmp(loss, "mse") == 0 ? TSR_LOSS_MSE : TSR_LOSS_XENT);
    return TSR_OK;
}

int tsr_model_spec_from_json(const char *text, tsr_model_spec_t *s)
{
    json_error_t err;
    json_t *root = json_loads(text, 0, &err);
    int rc = TSR_OK;
    memset(s, 0, sizeof *s);
    if (!json_is_object(root)) {
        json_decref(root);
        return tsr_error_set(TSR_EDATA, "model JSON: %s", root ? "not an object" : err.text);
    }
    if (!json_object_get(root, "graph")) {
        rc = from_mlp_json(root, s);
        json_decref(root);
        return rc;
    }
    json_t *in = json_object_get(root, "input"), *layers = json_object_get(root, "layers");
    s->input =
        (tsr_shape_t){(int)json_integer_value(json_array_get(in, 0)), (int)json_integer_value(json_array_get(in, 1)),
                      (int)json_integer_value(json_array_get(in, 2))};
    const char *loss = json_string_value(json_object_get(root, "loss"));
    int li = loss ? tsr_loss_parse(loss) : -1;
    size_t n = json_array_size(layers);
    if (li < 0 || n == 0 || n > TSR_MODEL_MAX_LAYERS) {
        json_decref(root);
        return tsr_error_set(TSR_EDATA, "model JSON: expected a loss and 1 to %d layers", TSR_MODEL_MAX_LAYERS);
    }
    s->loss = (tsr_loss_t)li;
    s->label_smoothing = (float)json_number_value(json_object_get(root, "label_smoothing"));
    s->huber_delta = (float)json_number_value(json_object_get(root, "huber_delta"));
    s->sync_bn = json_is_true(json_object_get(root, "sync_bn"));
    json_t *cw = json_object_get(root, "class_weights");
    s->nclass_weights = (int)(json_array_size(cw) < TSR_MODEL_MAX_CLASS_WEIGHTS ? json_array_size(cw) : 0);
    for (int i = 0; i < s->nclass_weights; i++)
        s->class_weight[i] = (float)json_number_value(json_array_get(cw, (size_t)i));
    for (size_t i = 0; i < n && !rc; i++) {
        json_t *l = json_array_get(layers, i), *args = json_object_get(l, "args");
        const char *kind = json_string_value(json_object_get(l, "kind"));
        tsr_layer_spec_t *ls = &s->layer[i];
        const tsr_layer_kind_t *k = kind ? tsr_layer_find(kind) : NULL;
        argdef_t d;
        if (!k) {
            rc = tsr_error_set(TSR_EDATA, "model JSON: layer %zu: unknown kind \"%s\"%s", i, kind ? kind : "?",
                               kind ? " (a plugin's? name its library in [model] plugins, or --plugins)" : "");
            break;
        }
        snprintf(ls->kind, sizeof ls->kind, "%s", kind);
        if ((rc = argdefs(k, &d)))
            break;
        for (int a = 0; a < d.n; a++) {
            json_t *v = json_object_get(args, d.name[a]);
            ls->arg[a] = json_is_number(v) ? json_number_value(v) : d.def[a];
            if (isnan(ls->arg[a]))
                rc = tsr_error_set(TSR_EDATA, "model JSON: layer %zu (%s): no value for %s", i, kind, d.name[a]);
        }
    }
    s->nlayers = (int)n;
    json_decref(root);
    return rc;
}

static int same_layer(const tsr_layer_spec_t *a, const tsr_layer_spec_t *b)
{
    return strcmp(a->kind, b->kind) == 0 && memcmp(a->arg, b->arg, sizeof a->arg) == 0;
}

int tsr_model_spec_diff(const tsr_model_spec_t *a, const tsr_model_spec_t *b, char *why, size_t len)
{
    char ta[96], tb[96];
    if (a->input.c != b->input.c || a->input.h != b->input.h || a->input.w != b->input.w) {
        snprintf(why, len, "the input is %dx%dx%d here and %dx%dx%d there", a->input.c, a->input.h, a->input.w,
                 b->input.c, b->input.h, b->input.w);
        return 1;
    }
    int n = a->nlayers < b->nlayers ? a->nlayers : b->nlayers;
    for (int i = 0; i < n; i++)
        if (!same_layer(&a->layer[i], &b->layer[i])) {
            tsr_layer_spec_text(&a->layer[i], ta, sizeof ta);
            tsr_layer_spec_text(&b->layer[i], tb, sizeof tb);
            snprintf(why, len, "layer %d is %s here and %s there", i, ta, tb);
            return 1;
        }
    if (a->nlayers != b->nlayers) {
        const tsr_model_spec_t *l = a->nlayers > b->nlayers ? a : b;
        tsr_layer_spec_text(&l->layer[n], ta, sizeof ta);
        snprintf(why, len, "%d layers here and %d there (layer %d, %s, is only %s)", a->nlayers, b->nlayers, n, ta,
                 l == a ? "here" : "there");
        return 1;
    }
    if (a->loss != b->loss || a->label_smoothing != b->label_smoothing || a->huber_delta != b->huber_delta ||
        a->sync_bn != b->sync_bn || a->nclass_weights != b->nclass_weights ||
        memcmp(a->class_weight, b->class_weight, sizeof a->class_weight) != 0) {
        snprintf(why, len, "the loss is %s here and %s there (or its options differ)", tsr_loss_name(a->loss),
                 tsr_loss_name(b->loss));
        return 1;
    }
    return 0;
}
