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

/* Parses an IPv4 or IPv6 literal. */
int serve_parse_addr(const char *bind, int port, serve_addr_t *out);
/* Starts the daemon with threads HTTP threads; sets s->daemon and s->port. */
int serve_http_start(tsr_serve_t *s, const serve_addr_t *addr, int threads);
/* Stops accepting connections (existing ones go on). */
void serve_http_quiesce(tsr_serve_t *s);
void serve_http_stop(tsr_serve_t *s);

#endif
