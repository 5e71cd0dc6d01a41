/* SPDX-License-Identifier: BSD-3-Clause */
/* The coordinator's life cycle: configuration, the token, binding, the
 * address file, and the publish calls the training loop makes. */
#include "serve/internal.h"
#include "serve/http.h"
#include "common/fileutil.h"
#include "tessera/error.h"
#include "tessera/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { MIN_TOKEN = 16, MAX_TOKEN = 4096 };

void tsr_serve_config_default(tsr_serve_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->bind = "127.0.0.1";
    c->run_dir = ".";
    c->registry = "registry";
    c->max_batch = 64;
    c->max_delay_us = 500;
    c->cache_mb = 64;
    c->cache_ttl_s = 300;
    c->max_body_kb = 1024;
    c->max_upload_mb = 512;
    c->max_connections = 2048;
    c->max_connections_per_ip = 512;
    c->header_timeout_s = 10;
    c->max_model_params = TSR_MODEL_MAX_PARAMS_DEFAULT;
}

static const char *file_kind(mode_t m)
{
    return S_ISDIR(m)                 ? "a directory"
           : S_ISFIFO(m)              ? "a FIFO"
           : S_ISSOCK(m)              ? "a socket"
           : S_ISCHR(m) || S_ISBLK(m) ? "a device"
                                      : "not a regular file";
}

/* The token must be a secret: refuse a file the group or others may read or
 * write, and anything but a regular file (opened without blocking, so a
 * FIFO is refused at once rather than waited on). */
static int load_token(tsr_serve_t *s, const char *path)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return tsr_error_set(TSR_EINVAL, "serve.token_file %s: %s", path, strerror(errno));
    struct stat st = {0};
    char buf[MAX_TOKEN + 2];
    ssize_t n = -1;
    int rc = TSR_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = tsr_error_set(TSR_EINVAL, "serve.token_file %s: %s; expected a regular file", path, file_kind(st.st_mode));
    else if (st.st_mode & (S_IRWXG | S_IRWXO))
        rc = tsr_error_set(TSR_EINVAL,
                           "serve.token_file %s: mode %04o lets the group or others use it; "
                           "run chmod 600 on it",
                           path, (unsigned)(st.st_mode & 07777));
    else if ((n = read(fd, buf, sizeof buf - 1)) < 0)
        rc = tsr_error_set(TSR_EINVAL, "serve.token_file %s: %s", path, strerror(errno));
    close(fd);
    if (rc || n < 0)
        return rc ? rc : TSR_EINVAL;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    buf[n] = '\0';
    if (n < MIN_TOKEN || n > MAX_TOKEN)
        return tsr_error_set(TSR_EINVAL, "serve.token_file %s: the token must be %d to %d characters", path, MIN_TOKEN,
                             MAX_TOKEN);
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] <= ' ' || buf[i] > '~')
            return tsr_error_set(TSR_EINVAL, "serve.token_file %s: the token must be printable ASCII without spaces",
                                 path);
    s->token = strdup(buf);
    s->token_len = (size_t)n;
    memset(buf, 0, sizeof buf);
    return s->token ? TSR_OK : tsr_error_set(TSR_ENOMEM, "serve: out of memory");
}

/* "host:port" for the address file, as curl -g and ssh -L take it
 * ("[::1]:8080" for IPv6); a wildcard bind is reached by the host's name. */
static int write_addr_file(tsr_serve_t *s, const serve_addr_t *addr)
{
    char where[320], line[640], node[256] = "";
    gethostname(node, sizeof node - 1);
    if (addr->wildcard)
        snprintf(where, sizeof where, "%s:%d", node[0] ? node : "localhost", s->port);
    else
        serve_addr_format(addr, s->port, where, sizeof where);
    int n = snprintf(line, sizeof line, "%s\nnode %s\n", where, node);
    size_t plen = strlen(s->run_dir) + 32;
    s->addr_file = malloc(plen);
    if (!s->addr_file)
        return tsr_error_set(TSR_ENOMEM, "serve: out of memory");
    snprintf(s->addr_file, plen, "%s/coordinator.addr", s->run_dir);
    int rc = tsr_file_write_atomic(s->addr_file, line, (size_t)n);
    if (rc)
        tsr_error_prefix(rc, "cannot write the coordinator's address: ");
    s->addr_written = rc == TSR_OK;
    return rc;
}

static int check_config(const tsr_serve_config_t *c)
{
    if (c->port < 0 || c->port > 65535)
        return tsr_error_set(TSR_EINVAL, "serve.port = %d: expected 0 to 65535", c->port);
    if (c->max_batch < 1 || c->max_batch > 65536)
        return tsr_error_set(TSR_EINVAL, "serve.max_batch = %d: expected 1 to 65536", c->max_batch);
    if (c->max_delay_us < 0 || c->max_delay_us > 10000000)
        return tsr_error_set(TSR_EINVAL, "serve.max_delay_us = %d: expected 0 to 10000000", c->max_delay_us);
    if (!(c->cache_ttl_s >= 0))
        return tsr_error_set(TSR_EINVAL, "serve.cache_ttl_s: expected a number >= 0");
    if (c->max_body_kb < 1 || c->max_body_kb > (1u << 20) || c->max_upload_mb < 1 || c->max_upload_mb > (1u << 20))
        return tsr_error_set(TSR_EINVAL, "serve.max_body_kb and serve.max_upload_mb: expected 1 to 1048576");
    if (c->threads < 0 || c->threads > 1024)
        return tsr_error_set(TSR_EINVAL, "serve.threads = %d: expected 0 to 1024", c->threads);
    if (c->max_connections < 1 || c->max_connections_per_ip < 1)
        return tsr_error_set(TSR_EINVAL, "serve.max_connections and serve.max_connections_per_ip: expected >= 1");
    if (c->header_timeout_s < 1 || c->header_timeout_s > 3600)
        return tsr_error_set(TSR_EINVAL, "serve.header_timeout_s = %d: expected 1 to 3600", c->header_timeout_s);
    return TSR_OK;
}

int tsr_serve_create(const tsr_serve_config_t *cfg, tsr_serve_t **out)
{
    int rc = check_config(cfg);
    if (rc)
        return rc;
    tsr_serve_t *s = calloc(1, sizeof *s);
    if (!s)
        return tsr_error_set(TSR_ENOMEM, "serve: out of memory");
    s->cfg = *cfg;
    s->listen_fd = -1;
    s->t_start = tsr_time_now();
    pthread_rwlock_init(&s->tasks_lock, NULL);
    pthread_mutex_init(&s->sweep_lock, NULL);
    s->bind = strdup(cfg->bind && cfg->bind[0] ? cfg->bind : "127.0.0.1");
    s->run_dir = strdup(cfg->run_dir && cfg->run_dir[0] ? cfg->run_dir : ".");
    if (!s->bind || !s->run_dir) {
        rc = tsr_error_set(TSR_ENOMEM, "serve: out of memory");
        goto fail;
    }
    if (strcmp(s->bind, "localhost") == 0) {
        free(s->bind);
        s->bind = strdup("127.0.0.1");
    }
    serve_addr_t addr;
    if ((rc = serve_parse_addr(s->bind, s->cfg.port, &addr)))
        goto fail;
    if (cfg->token_file && cfg->token_file[0] && (rc = load_token(s, cfg->token_file)))
        goto fail;
    if (!addr.loopback && !s->token) {
        rc = tsr_error_set(TSR_EINVAL,
                           "serve.bind = %s is reachable from other hosts: set serve.token_file "
                           "(--token-file) to a file holding a bearer token, or bind 127.0.0.1",
                           s->bind);
        goto fail;
    }
    if (cfg->cache_mb) {
        tsr_cache_config_t cc = {.max_bytes = cfg->cache_mb << 20, .ttl_s = cfg->cache_ttl_s};
        if ((rc = tsr_cache_create(&cc, &s->cache)))
            goto fail;
    }
    if (cfg->registry && cfg->registry[0] && (rc = tsr_registry_create(cfg->registry, &s->registry)))
        goto fail;
    if (s->registry)
        tsr_registry_set_max_params(s->registry, cfg->max_model_params);
    if ((rc = serve_status_create(&s->status)) || (rc = serve_perf_create(&s->perf)) ||
        (rc = serve_batcher_create(s, &s->batcher)))
        goto fail;
    int threads = cfg->threads;
    if (threads == 0) {
        cpu_set_t set;
        threads = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    }
    if ((rc = serve_http_start(s, &addr, threads)))
        goto fail;
    if ((rc = write_addr_file(s, &addr)))
        goto fail;
    char where[80];
    serve_addr_format(&addr, s->port, where, sizeof where);
    tsr_log(TSR_LOG_INFO, "coordinator: listening on %s (%d threads%s); address in %s", where, threads,
            s->token ? ", bearer token required" : "", s->addr_file);
    *out = s;
    return TSR_OK;
fail:
    tsr_serve_destroy(s);
    return rc;
}

void tsr_serve_destroy(tsr_serve_t *s)
{
    if (!s)
        return;
    /* Stop accepting, answer what waits on the model, then stop the threads. */
    serve_http_quiesce(s);
    serve_batcher_stop(s->batcher);
    serve_http_stop(s);
    serve_batcher_destroy(s->batcher);
    if (s->addr_written) /* only ours: what stood there before a failed write stays */
        unlink(s->addr_file);
    serve_status_destroy(s->status);
    serve_perf_destroy(s->perf);
    tsr_registry_destroy(s->registry);
    tsr_cache_destroy(s->cache);
    if (s->token)
        memset(s->token, 0, s->token_len);
    free(s->token);
    free(s->addr_file);
    free(s->bind);
    free(s->run_dir);
    pthread_rwlock_destroy(&s->tasks_lock);
    pthread_mutex_destroy(&s->sweep_lock);
    free(s->sweep_json);
    free(s);
}

int tsr_serve_port(const tsr_serve_t *s) { return s->port; }

int tsr_serve_publish_model(tsr_serve_t *s, const tsr_model_t *m)
{
    uint64_t v = atomic_load(&s->version) + 1;
    int rc = serve_batcher_publish(s->batcher, m, v);
    if (rc)
        return rc;
    atomic_store(&s->in_shape, serve_pack_shape(tsr_model_spec(m)->input));
    atomic_store(&s->in_width, tsr_model_input_size(m));
    atomic_store(&s->out_width, tsr_model_output_size(m));
    /* Cache keys start with the version, so from here old answers can no
     * longer be found; the batcher thread frees them. */
    atomic_store(&s->version, v);
    return TSR_OK;
}

int tsr_serve_set_model_source(tsr_serve_t *s, const char *source)
{
    serve_status_source(s->status, source);
    return TSR_OK;
}

int tsr_serve_publish_status(tsr_serve_t *s, const tsr_serve_status_t *st)
{
    return serve_status_publish(s->status, st);
}

int tsr_serve_register_model(tsr_serve_t *s, const char *model_path, const char *name, char *id, size_t idlen)
{
    if (!s->registry)
        return tsr_error_set(TSR_EINVAL, "serve: no registry configured (serve.registry)");
    return tsr_registry_add(s->registry, model_path, name, id, idlen);
}
