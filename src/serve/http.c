/* libmicrohttpd glue. The daemon runs a pool of epoll threads; a request
 * callback sees the headers first (the router may answer at once), then the
 * body in pieces, then a final call where the router answers or, for a
 * prediction that missed the cache, suspends the connection until the
 * batcher resumes it. */
#include "serve/http.h"
#include "tessera/error.h"
#include "tessera/runtime.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *mhd_arg(void *conn, const char *key)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
}

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static void suspend(serve_job_t *j)
{
    serve_req_t *r = j->owner;
    MHD_suspend_connection(r->conn);
}

static void resume(serve_job_t *j)
{
    serve_req_t *r = j->owner;
    r->phase = PH_COMPUTED;
    MHD_resume_connection(r->conn);
}

static enum MHD_Result send_resp(serve_req_t *r)
{
    serve_resp_t *p = &r->resp;
    struct MHD_Response *resp;
    if (p->fd >= 0) {
        resp = MHD_create_response_from_fd64(p->fd_len, p->fd);
        if (resp)
            p->fd = -1; /* closed by the library */
    } else {
        resp = MHD_create_response_from_buffer(p->len, p->body, MHD_RESPMEM_MUST_FREE);
        if (resp)
            p->body = NULL;
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, p->ctype ? p->ctype : "application/json");
    if (p->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, p->allow);
    if (p->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"tessera\"");
    if (p->disposition[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, p->disposition);
    if (p->location[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, p->location);
    if (r->route == RT_DASHBOARD)
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'");
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)p->status, resp);
    MHD_destroy_response(resp);
    serve_record(r->s, r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **con_cls)
{
    (void)version;
    serve_req_t *r = *con_cls;
    if (!r) {
        r = serve_req_new(cls, conn, mhd_arg);
        if (!r)
            return MHD_NO;
        r->job.on_queue = suspend;
        r->job.done = resume;
        *con_cls = r;
        r->ctype = header(conn, MHD_HTTP_HEADER_CONTENT_TYPE);
        serve_begin(r, method, url, header(conn, MHD_HTTP_HEADER_AUTHORIZATION),
                    header(conn, MHD_HTTP_HEADER_CONTENT_LENGTH));
        /* An early answer (401, 404, 413, ...) goes out before any body is read. */
        return r->resp.status ? send_resp(r) : MHD_YES;
    }
    if (*size) {
        int rc = serve_body(r, data, *size);
        *size = 0;
        return rc == 0 ? MHD_YES : MHD_NO;
    }
    if (r->phase == PH_COMPUTED) /* resumed: the batcher is done with the job */
        serve_predict_finish(r);
    else
        serve_end(r);
    if (r->queued) {
        /* Suspended; the batcher resumes us. Do not look at phase here: it
         * may already have completed the job on its own thread. */
        r->queued = 0;
        return MHD_YES;
    }
    return send_resp(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    serve_req_free(*con_cls);
    *con_cls = NULL;
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
    tsr_serve_t *s = cls;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '.'))
        msg[--n] = '\0';
    snprintf(s->http_error, sizeof s->http_error, "%s", msg);
    tsr_log(TSR_LOG_DEBUG, "coordinator: libmicrohttpd: %s", msg);
}

int serve_parse_addr(const char *bind, int port, serve_addr_t *a)
{
    char buf[64];
    memset(a, 0, sizeof *a);
    size_t n = strlen(bind);
    if (n >= 2 && bind[0] == '[' && bind[n - 1] == ']' && n - 2 < sizeof buf) { /* "[::1]" */
        memcpy(buf, bind + 1, n - 2);
        buf[n - 2] = '\0';
    } else {
        snprintf(buf, sizeof buf, "%s", bind);
    }
    if (inet_pton(AF_INET, buf, &a->sa.v4.sin_addr) == 1) {
        a->sa.v4.sin_family = AF_INET;
        a->sa.v4.sin_port = htons((uint16_t)port);
        uint32_t ip = ntohl(a->sa.v4.sin_addr.s_addr);
        a->loopback = (ip >> 24) == 127;
        a->wildcard = ip == 0;
        return TSR_OK;
    }
    if (inet_pton(AF_INET6, buf, &a->sa.v6.sin6_addr) == 1) {
        a->sa.v6.sin6_family = AF_INET6;
        a->sa.v6.sin6_port = htons((uint16_t)port);
        a->v6 = 1;
        a->loopback = IN6_IS_ADDR_LOOPBACK(&a->sa.v6.sin6_addr);
        a->wildcard = IN6_IS_ADDR_UNSPECIFIED(&a->sa.v6.sin6_addr);
        return TSR_OK;
    }
    return tsr_error_set(TSR_EINVAL, "serve.bind = '%s': expected an IPv4 or IPv6 address such as 127.0.0.1 or 0.0.0.0",
                         bind);
}

int serve_http_start(tsr_serve_t *s, const serve_addr_t *addr, int threads)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (addr->v6)
        flags |= MHD_USE_IPv6;

    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, (void *)&addr->sa},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s},
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_log, s},
        {MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL},   /* idle keep-alive connections */
        {MHD_OPTION_CONNECTION_LIMIT, 4096, NULL},   /* bounded memory under a flood */
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
        /* Per-connection pool for headers and read buffers, zeroed by the
         * library before every request: 16 KiB (not the default 32) halves
         * that memset and still fits any sane header block. */
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, 16384, NULL},
        {MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL},
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    s->daemon = MHD_start_daemon(flags, (uint16_t)s->cfg.port, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, opts,
                                 MHD_OPTION_END);
    if (!s->daemon)
        return tsr_error_set(TSR_ESYS, "coordinator: cannot listen on %s port %d: %s", s->bind, s->cfg.port,
                             s->http_error[0] ? s->http_error : "libmicrohttpd refused to start");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : s->cfg.port;
    return TSR_OK;
}

void serve_http_quiesce(tsr_serve_t *s)
{
    if (s->daemon && s->listen_fd < 0)
        s->listen_fd = MHD_quiesce_daemon(s->daemon);
}

void serve_http_stop(tsr_serve_t *s)
{
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    s->listen_fd = -1;
}
