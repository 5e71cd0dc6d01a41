/* SPDX-License-Identifier: BSD-3-Clause */
/* The libmicrohttpd side of the coordinator: listening, the request
 * callback, suspending predictions until the batcher is done. */
#ifndef TSR_SERVE_HTTP_H
#define TSR_SERVE_HTTP_H
#include "serve/internal.h"

#include <netinet/in.h>

typedef struct serve_addr {
    union {
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } sa;
    int v6;       /* IPv6 address */
    int loopback; /* 127.0.0.0/8 or ::1 */
    int wildcard; /* 0.0.0.0 or :: */
} serve_addr_t;

/* Parses an IPv4 or IPv6 literal (the latter bare or in brackets). */
int serve_parse_addr(const char *bind, int port, serve_addr_t *out);
/* "127.0.0.1:8080" or "[::1]:8080": what curl -g and ssh -L take. */
void serve_addr_format(const serve_addr_t *a, int port, char *buf, size_t len);
/* Starts the daemon with threads HTTP threads; sets s->daemon and s->port.
 * A port another process listens on is TSR_EIO ("address in use"). */
int serve_http_start(tsr_serve_t *s, const serve_addr_t *addr, int threads);
/* Stops accepting connections (existing ones go on). */
void serve_http_quiesce(tsr_serve_t *s);
void serve_http_stop(tsr_serve_t *s);

#endif
