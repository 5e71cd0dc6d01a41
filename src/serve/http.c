/* SPDX-License-Identifier: BSD-3-Clause */
/* libmicrohttpd glue. The daemon runs a pool of epoll threads; a request
 * callback sees the headers first (the router may answer at once), then the
 * body in pieces, then a final call where the router answers or, for a
 * prediction that missed the cache, suspends the connection until the
 * batcher resumes it.
 *
 * Hostile clients: connections are bounded in all and per client address
 * (the library's limits), and a connection has header_timeout_s to send a
 * request's headers, however slowly it drips them: a watcher thread shuts
 * down the socket of one that takes longer (the library's own timeout only
 * counts silence). */
#include "serve/http.h"
#include "tessera/error.h"
#include "tessera/log.h"
#include "common/thread.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A connection the watcher knows, from its start to its close. */
typedef struct serve_conn {
    struct serve_conn *prev, *next;
    int fd;
    int cut;                  /* shut down by the watcher */
    _Atomic int busy;         /* its request's headers are in and the request is not finished */
    _Atomic int64_t since_ms; /* when it began waiting for a request's headers */
} serve_conn_t;

struct serve_conns {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    serve_conn_t head; /* circular list */
    int stop, started;
    pthread_t thread;
    int64_t timeout_ms;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static serve_conn_t *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct serve_conns *cs = ((tsr_serve_t *)cls)->conns;
    serve_conn_t *c = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci || !(c = calloc(1, sizeof *c)))
            return; /* untracked: the library's idle timeout still applies */
        c->fd = ci->connect_fd;
        atomic_store(&c->since_ms, now_ms());
        pthread_mutex_lock(&cs->mu);
        c->next = cs->head.next;
        c->prev = &cs->head;
        cs->head.next->prev = c;
        cs->head.next = c;
        pthread_mutex_unlock(&cs->mu);
        *socket_context = c;
    } else if (c) {
        /* Unlinked before the library closes the socket, so the watcher
         * never shuts down a descriptor that another connection reuses. */
        pthread_mutex_lock(&cs->mu);
        c->prev->next = c->next;
        c->next->prev = c->prev;
        pthread_mutex_unlock(&cs->mu);
        free(c);
        *socket_context = NULL;
    }
}

static void *watch(void *arg)
{
    pthread_setname_np(pthread_self(), "tsr-http-watch"); /* top -H, gdb and traces name it */
    struct serve_conns *cs = arg;
    pthread_mutex_lock(&cs->mu);
    while (!cs->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t step = cs->timeout_ms / 4 < 1000 ? cs->timeout_ms / 4 : 1000;
        until.tv_nsec += (long)(step % 1000) * 1000000L;
        until.tv_sec += step / 1000 + until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&cs->wake, &cs->mu, &until);
        int64_t now = now_ms();
        for (serve_conn_t *c = cs->head.next; c != &cs->head; c = c->next)
            if (!c->cut && !atomic_load(&c->busy) && now - atomic_load(&c->since_ms) > cs->timeout_ms) {
                shutdown(c->fd, SHUT_RDWR); /* the library sees the end and closes it */
                c->cut = 1;
            }
    }
    pthread_mutex_unlock(&cs->mu);
    return NULL;
}

static int conns_start(tsr_serve_t *s)
{
    struct serve_conns *cs = calloc(1, sizeof *cs);
    if (!cs)
        return tsr_error_set(TSR_ENOMEM, "coordinator: out of memory");
    pthread_mutex_init(&cs->mu, NULL);
    pthread_cond_init(&cs->wake, NULL);
    cs->head.next = cs->head.prev = &cs->head;
    cs->timeout_ms = (int64_t)s->cfg.header_timeout_s * 1000;
    s->conns = cs;
    if (pthread_create(&cs->thread, NULL, watch, cs) != 0)
        return tsr_error_set(TSR_ESYS, "coordinator: cannot start the connection watcher");
    cs->started = 1;
    return TSR_OK;
}

/* After the daemon stopped (every connection closed). */
static void conns_stop(tsr_serve_t *s)
{
    struct serve_conns *cs = s->conns;
    if (!cs)
        return;
    if (cs->started) {
        tsr_thread_stop(cs->thread, &cs->mu, &cs->wake, &cs->stop);
    }
    while (cs->head.next != &cs->head) {
        serve_conn_t *c = cs->head.next;
        cs->head.next = c->next;
        free(c);
    }
    pthread_cond_destroy(&cs->wake);
    pthread_mutex_destroy(&cs->mu);
    free(cs);
    s->conns = NULL;
}

static const char *mhd_arg(void *conn, const char *key, size_t *len)
{
    const char *v = NULL;
    if (MHD_lookup_connection_value_n(conn, MHD_GET_ARGUMENT_KIND, key, strlen(key), &v, len) != MHD_YES)
        return NULL;
    return v;
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
        serve_conn_t *c = conn_of(conn);
        if (c)
            atomic_store(&c->busy, 1);
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

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)toe;
    serve_req_free(*con_cls);
    *con_cls = NULL;
    serve_conn_t *c = conn_of(conn);
    if (c) { /* the next request's headers are due from now */
        atomic_store(&c->since_ms, now_ms());
        atomic_store(&c->busy, 0);
    }
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

void serve_addr_format(const serve_addr_t *a, int port, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (a->v6)
        inet_ntop(AF_INET6, &a->sa.v6.sin6_addr, ip, sizeof ip);
    else
        inet_ntop(AF_INET, &a->sa.v4.sin_addr, ip, sizeof ip);
    snprintf(buf, len, a->v6 ? "[%s]:%d" : "%s:%d", ip, port);
}

/* The listening socket is made here, not by the library, so that a busy
 * port is an error: SO_REUSEADDR only (a restart may bind over connections
 * in TIME_WAIT), never SO_REUSEPORT, which lets a second process listen on
 * the same port and take part of the connections. */
static int listen_on(const serve_addr_t *a, int port, int *out)
{
    char where[INET6_ADDRSTRLEN + 16];
    int on = 1, off = 0, fd = socket(a->v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return tsr_error_set(TSR_ESYS, "coordinator: socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    /* "::" takes IPv4 clients too: the host name written for it may resolve to either. */
    if (a->v6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, a->wildcard ? &off : &on, sizeof on);
    socklen_t len = a->v6 ? sizeof a->sa.v6 : sizeof a->sa.v4;
    if (bind(fd, (const struct sockaddr *)&a->sa, len) == 0 && listen(fd, 1024) == 0) {
        *out = fd;
        return TSR_OK;
    }
    int e = errno;
    close(fd);
    serve_addr_format(a, port, where, sizeof where);
    if (e == EADDRINUSE)
        return tsr_error_set(TSR_EIO,
                             "coordinator: address in use: %s (another coordinator or program listens "
                             "there; choose another serve.port, or 0 for any free port)",
                             where);
    if (e == EADDRNOTAVAIL)
        return tsr_error_set(TSR_EINVAL,
                             "coordinator: cannot listen on %s: serve.bind is not an address of this "
                             "host",
                             where);
    return tsr_error_set(TSR_EIO, "coordinator: cannot listen on %s: %s", where, strerror(e));
}

/* Room for limit connections under RLIMIT_NOFILE (raised if allowed), less
 * some for the files the process opens itself. */
static int fit_fd_limit(int limit)
{
    enum { SPARE = 64 };
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return limit;
    rlim_t want = (rlim_t)limit + SPARE;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur >= want)
        return limit;
    int fit = rl.rlim_cur > 2 * SPARE ? (int)(rl.rlim_cur - SPARE) : SPARE;
    tsr_log(TSR_LOG_WARN,
            "coordinator: serve.max_connections = %d does not fit the open-file limit of %llu; "
            "using %d",
            limit, (unsigned long long)rl.rlim_cur, fit);
    return fit;
}

int serve_http_start(tsr_serve_t *s, const serve_addr_t *addr, int threads)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (addr->v6)
        flags |= MHD_USE_IPv6;
    int fd = -1, rc = listen_on(addr, s->cfg.port, &fd);
    if (rc || (rc = conns_start(s))) {
        if (fd >= 0)
            close(fd);
        return rc;
    }
    int limit = fit_fd_limit(s->cfg.max_connections);
    struct stat st;
    fstat(fd, &st);
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_LISTEN_SOCKET, fd, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, s},
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_log, s},
        {MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL}, /* silence while a body is read */
        {MHD_OPTION_CONNECTION_LIMIT, limit > threads ? limit : threads, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->cfg.max_connections_per_ip, NULL},
        /* Per-connection pool for headers and read buffers, zeroed by the
         * library before every request: 16 KiB (not the default 32) halves
         * that memset and still fits any sane header block. */
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, 16384, NULL},
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!s->daemon) {
        /* Some of the library's failure paths close the socket, some not:
         * close it only if the descriptor is still that socket. */
        struct stat now;
        if (fstat(fd, &now) == 0 && now.st_ino == st.st_ino && now.st_dev == st.st_dev)
            close(fd);
        return tsr_error_set(TSR_ESYS, "coordinator: cannot start the HTTP server on %s port %d: %s", s->bind,
                             s->cfg.port, s->http_error[0] ? s->http_error : "libmicrohttpd refused to start");
    }
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
    conns_stop(s);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    s->listen_fd = -1;
}
