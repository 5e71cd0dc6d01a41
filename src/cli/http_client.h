/* SPDX-License-Identifier: BSD-3-Clause */
/* A minimal HTTP client for talking to the coordinator (internal to the CLI). */
#ifndef TESSERA_CLI_HTTP_CLIENT_H
#define TESSERA_CLI_HTTP_CLIENT_H
#include <stddef.h>

typedef struct tsr_http_req {
    const char *where;  /* http://HOST:PORT, HOST:PORT, or a run directory / coordinator.addr */
    const char *method; /* "GET", "POST" */
    const char *path;   /* "/tasks?state=failed" (already escaped) */
    const char *ctype;  /* NULL: none */
    const char *token;  /* bearer token or NULL */
    const void *body;
    size_t len;
} tsr_http_req_t;

/* Sends q; *status is the HTTP status, *body (malloc'd, terminated) the answer. */
int tsr_http_request(const tsr_http_req_t *q, int *status, char **body, size_t *blen);

#endif
