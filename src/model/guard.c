/* SPDX-License-Identifier: BSD-3-Clause */
/* Calls into user-defined (plugin) layers under a guard: a crash inside
 * the plugin (SIGSEGV, SIGBUS, SIGFPE, SIGILL) becomes an error naming the
 * layer and the signal, so the step's agreement stops every rank cleanly and
 * nothing is written from the broken state, instead of one rank dying and
 * the launcher killing the rest. Built-in kinds are called directly. */
#include "model/internal.h"
#include "model/layers/layers.h"

#include "common/sigguard.h"
#include "tessera/error.h"

#include <string.h>

typedef struct {
    tsr_layer_t *l;
    const tsr_layer_run_t *run;
    const float *x, *y;
    float *out, *dy, *dx;
    size_t n;
    int backward;
} call_t;

static int call(void *arg)
{
    call_t *c = arg;
    return c->backward ? c->l->kind->backward(c->l, c->run, c->x, c->y, c->dy, c->dx, c->n)
                       : c->l->kind->forward(c->l, c->run, c->x, c->out, c->n);
}

static int guarded(call_t *c)
{
    int sig, rc = tsr_sigguard_run(call, c, &sig);
    if (sig)
        rc = tsr_error_set(TSR_EINTERNAL,
                           "the plugin layer %s crashed in %s (signal %d, %s); its state is unknown, so "
                           "training stops here and nothing is written",
                           c->l->kind->name, c->backward ? "backward" : "forward", sig, strsignal(sig));
    return rc;
}

int layer_forward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    if (tsr_layer_is_builtin(l->kind))
        return l->kind->forward(l, run, x, y, n);
    call_t c = {.l = l, .run = run, .x = x, .out = y, .n = n};
    return guarded(&c);
}

int layer_backward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, const float *y, float *dy, float *dx,
                   size_t n)
{
    if (tsr_layer_is_builtin(l->kind))
        return l->kind->backward(l, run, x, y, dy, dx, n);
    call_t c = {.l = l, .run = run, .x = x, .y = y, .dy = dy, .dx = dx, .n = n, .backward = 1};
    return guarded(&c);
}
