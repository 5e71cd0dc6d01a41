/* SPDX-License-Identifier: BSD-3-Clause */
/* GET /sweep: the table a sweep publishes after every change. */
#include "serve/internal.h"
#include "tessera/error.h"

#include <stdlib.h>
#include <string.h>

int tsr_serve_publish_sweep(tsr_serve_t *s, const char *json)
{
    char *copy = strdup(json);
    if (!copy)
        return tsr_error_set(TSR_ENOMEM, "serve: out of memory for the sweep's table");
    pthread_mutex_lock(&s->sweep_lock);
    char *old = s->sweep_json;
    s->sweep_json = copy;
    pthread_mutex_unlock(&s->sweep_lock);
    free(old);
    return TSR_OK;
}

void serve_route_sweep(serve_req_t *r)
{
    tsr_serve_t *s = r->s;
    pthread_mutex_lock(&s->sweep_lock);
    char *body = s->sweep_json ? strdup(s->sweep_json) : NULL;
    int none = !s->sweep_json;
    pthread_mutex_unlock(&s->sweep_lock);
    if (none)
        serve_error(r, 404, "no sweep runs on this coordinator");
    else if (!body)
        serve_error(r, 503, "out of memory");
    else
        serve_text(r, 200, "application/json", body, strlen(body));
}
