/* SPDX-License-Identifier: BSD-3-Clause */
/* A minimal HTTP/1.1 client for the coordinator (tessera tasks submit,
 * cancel, status): one request per connection ("Connection: close"), the
 * answer read to the end. The coordinator is named by URL
 * (http://HOST:PORT), HOST:PORT, or its run directory or address file
 * (coordinator.addr, whose first line is HOST:PORT). */
#include "cli/http_client.h"
#include "tessera/error.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

enum { MAX_ANSWER = 256 << 20, TIMEOUT_S = 60 };

/* host and port of the coordinator named by where. */
static int address(const char *where, char *host, size_t hlen, char *port, size_t plen)
{
    char line[512] = "";
    struct stat st;
    const char *a = where;
    if (strncmp(a, "http://", 7) == 0) {
        a += 7;
    } else if (stat(where, &st) == 0) {
        char path[4096];
        snprintf(path, sizeof path, S_ISDIR(st.st_mode) ? "%s/coordinator.addr" : "%s", where);
        FILE *f = fopen(path, "re");
        if (!f || !fgets(line, sizeof line, f)) {
            if (f)
                fclose(f);
            return tsr_error_set(TSR_EINVAL,
                                 "%s: no coordinator address in it (expected host:port on line 1 of "
                                 "coordinator.addr)",
                                 path);
        }
        fclose(f);
        line[strcspn(line, "\r\n")] = '\0';
        a = line;
    }
    const char *end = a + strcspn(a, "/"), *colon = NULL;
    if (*a == '[') { /* [v6]:port */
        const char *close = strchr(a, ']');
        colon = close && close[1] == ':' ? close + 1 : NULL;
        if (colon)
            snprintf(host, hlen, "%.*s", (int)(close - a - 1), a + 1);
    } else {
        colon = memchr(a, ':', (size_t)(end - a));
        if (colon)
            snprintf(host, hlen, "%.*s", (int)(colon - a), a);
    }
    if (!colon || colon + 1 >= end)
        return tsr_error_set(TSR_EINVAL, "%s: expected http://HOST:PORT, HOST:PORT or a coordinator's run directory",
                             where);
    snprintf(port, plen, "%.*s", (int)(end - colon - 1), colon + 1);
    return TSR_OK;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int tsr_http_request(const tsr_http_req_t *q, int *status, char **body, size_t *blen)
{
    char host[256], port[32];
    *body = NULL;
    *blen = 0;
    int rc = address(q->where, host, sizeof host, port, sizeof port);
    if (rc)
        return rc;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int e = getaddrinfo(host, port, &hints, &ai);
    if (e)
        return tsr_error_set(TSR_EIO, "coordinator %s:%s: %s", host, port, gai_strerror(e));
    int fd = -1;
    for (struct addrinfo *p = ai; p && fd < 0; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol);
        struct timeval tv = {TIMEOUT_S, 0};
        if (fd >= 0) {
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        }
        if (fd >= 0 && connect(fd, p->ai_addr, p->ai_addrlen) != 0) {
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return tsr_error_set(TSR_EIO, "coordinator %s:%s: cannot connect: %s", host, port, strerror(e));
    char head[8192];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\nUser-Agent: tessera\r\n"
                     "Content-Length: %zu\r\n",
                     q->method, q->path, host, port, q->len);
    if (q->ctype && n < (int)sizeof head)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Type: %s\r\n", q->ctype);
    if (q->token && n < (int)sizeof head)
        n += snprintf(head + n, sizeof head - (size_t)n, "Authorization: Bearer %s\r\n", q->token);
    if (n < (int)sizeof head)
        n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    if (n >= (int)sizeof head || send_all(fd, head, (size_t)n) || (q->len && send_all(fd, q->body, q->len))) {
        close(fd);
        return tsr_error_set(TSR_EIO, "coordinator %s:%s: sending the request failed", host, port);
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    for (ssize_t r = 1; buf && r > 0;) {
        if (len + 1 >= cap) {
            char *b = cap < MAX_ANSWER ? realloc(buf, cap * 2) : NULL;
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
        r = recv(fd, buf + len, cap - len - 1, 0);
        if (r < 0 && errno == EINTR)
            r = 1;
        else if (r > 0)
            len += (size_t)r;
    }
    close(fd);
    if (!buf)
        return tsr_error_set(TSR_ENOMEM, "coordinator answer too large");
    buf[len] = '\0';
    char *sp = strchr(buf, ' '), *hend = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) != 0 || !sp || !hend) {
        free(buf);
        return tsr_error_set(TSR_EIO, "coordinator %s:%s: not an HTTP answer", host, port);
    }
    *status = atoi(sp + 1);
    hend += 4;
    *blen = len - (size_t)(hend - buf);
    memmove(buf, hend, *blen + 1);
    *body = buf;
    return TSR_OK;
}
