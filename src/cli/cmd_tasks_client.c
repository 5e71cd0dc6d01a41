/* SPDX-License-Identifier: BSD-3-Clause */
/* tessera tasks submit|cancel|status: a running farm's coordinator over
 * HTTP, or (status) a journal read directly. No MPI. */
#include "cli/commands.h"
#include "cli/http_client.h"
#include "tessera/error.h"
#include "tessera/tasks.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: tessera tasks submit COORDINATOR FILE [--token-file F]\n"
    "       tessera tasks cancel COORDINATOR ID... | --tag TAG [--token-file F]\n"
    "       tessera tasks status COORDINATOR|JOURNAL_DIR [--state S] [--tag T] [--list] [--token-file F]\n"
    "COORDINATOR is http://HOST:PORT, HOST:PORT, or the run directory holding coordinator.addr.\n"
    "submit adds FILE's tasks (task-file lines) to the running farm; cancel stops tasks (running ones\n"
    "are killed) and skips their dependents; status prints counts by state and, with --list, one\n"
    "line per task: id, state, attempts, exit, rank.\n\n";

static int read_token(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return tsr_error_set(TSR_EINVAL, "--token-file %s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return TSR_OK;
}

/* One request; prints the error of an answer that is not 2xx. */
static int call(tsr_http_req_t *q, json_t **out)
{
    int status = 0;
    char *body = NULL;
    size_t len = 0;
    int rc = tsr_http_request(q, &status, &body, &len);
    if (rc)
        return rc;
    json_error_t e;
    json_t *o = json_loadb(body, len, 0, &e);
    if (status < 200 || status > 299) {
        const char *msg = json_is_object(o) ? json_string_value(json_object_get(o, "error")) : NULL;
        rc = tsr_error_set(status == 401   ? TSR_EINVAL
                           : status >= 500 ? TSR_EIO
                                           : TSR_EDATA,
                           "%s %s: HTTP %d: %s", q->method, q->path, status, msg ? msg : body);
        json_decref(o);
        free(body);
        return rc;
    }
    free(body);
    if (!o)
        return tsr_error_set(TSR_EIO, "%s %s: the answer is not JSON", q->method, q->path);
    *out = o;
    return TSR_OK;
}

/* "a b" -> "a%20b": query values. */
static void escape(const char *s, char *buf, size_t len)
{
    size_t o = 0;
    for (; *s && o + 4 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~", c))
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, len - o, "%%%02X", c);
    }
    buf[o] = '\0';
}

static int submit(tsr_http_req_t *q, const char *file)
{
    FILE *f = fopen(file, "rb");
    if (!f)
        return tsr_error_set(TSR_EDATA, "tasks submit: %s: %s", file, strerror(errno));
    struct stat st;
    char *text = NULL;
    size_t n = 0;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (text = malloc((size_t)st.st_size + 1)))
        n = fread(text, 1, (size_t)st.st_size, f);
    fclose(f);
    if (!text)
        return tsr_error_set(TSR_EDATA, "tasks submit: %s: not a regular file", file);
    q->method = "POST";
    q->path = "/tasks";
    q->ctype = "text/plain";
    q->body = text;
    q->len = n;
    json_t *o = NULL;
    int rc = call(q, &o);
    free(text);
    if (rc == TSR_OK)
        printf("tessera: submitted %lld task%s (the farm has %lld)\n",
               (long long)json_integer_value(json_object_get(o, "submitted")),
               json_integer_value(json_object_get(o, "submitted")) == 1 ? "" : "s",
               (long long)json_integer_value(json_object_get(o, "total")));
    json_decref(o);
    return rc;
}

static int cancel(tsr_http_req_t *q, int argc, char **argv, int from)
{
    int rc = TSR_OK;
    long total = 0;
    for (int i = from; i < argc && rc == TSR_OK; i++) {
        char path[512], esc[400];
        if (strcmp(argv[i], "--tag") == 0 && i + 1 < argc) {
            escape(argv[++i], esc, sizeof esc);
            snprintf(path, sizeof path, "/tasks/cancel?tag=%s", esc);
        } else if (strcmp(argv[i], "--token-file") == 0) {
            i++;
            continue;
        } else {
            escape(argv[i], esc, sizeof esc);
            snprintf(path, sizeof path, "/tasks/%s/cancel", esc);
        }
        q->method = "POST";
        q->path = path;
        json_t *o = NULL;
        if ((rc = call(q, &o)) == TSR_OK)
            total += (long)json_integer_value(json_object_get(o, "cancelled"));
        json_decref(o);
    }
    if (rc == TSR_OK)
        printf("tessera: cancelled %ld task%s\n", total, total == 1 ? "" : "s");
    return rc;
}

static void print_counts(json_t *o)
{
    json_t *c = json_object_get(o, "counts");
    long long k[TSR_TASK_NSTATES];
    for (int s = 0; s < TSR_TASK_NSTATES; s++)
        k[s] = json_integer_value(json_object_get(c, tsr_task_state_name((tsr_task_state_t)s)));
    printf("%lld tasks (farm %s): %lld succeeded, %lld failed, %lld skipped, %lld cancelled, %lld running, %lld not "
           "started; %.1f tasks/s\n",
           (long long)json_integer_value(json_object_get(o, "total")), json_string_value(json_object_get(o, "state")),
           k[TSR_TASK_SUCCEEDED], k[TSR_TASK_FAILED], k[TSR_TASK_SKIPPED], k[TSR_TASK_CANCELLED], k[TSR_TASK_RUNNING],
           k[TSR_TASK_PENDING] + k[TSR_TASK_READY] + k[TSR_TASK_DELAYED],
           json_number_value(json_object_get(o, "dispatch_rate")));
}

static int status_url(tsr_http_req_t *q, const char *state, const char *tag, int list)
{
    char path[1024], se[200] = "", te[400] = "";
    long offset = 0;
    if (state)
        escape(state, se, sizeof se);
    if (tag)
        escape(tag, te, sizeof te);
    for (int first = 1;; first = 0) {
        snprintf(path, sizeof path, "/tasks?limit=%d&offset=%ld%s%s%s%s", list ? 10000 : 0, offset,
                 state ? "&state=" : "", se, tag ? "&tag=" : "", te);
        q->method = "GET";
        q->path = path;
        json_t *o = NULL;
        int rc = call(q, &o);
        if (rc)
            return rc;
        if (first)
            print_counts(o);
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(o, "tasks"), i, t)
        {
            json_t *ex = json_object_get(t, "exit_code");
            char exitc[32] = "-";
            if (json_is_integer(ex))
                snprintf(exitc, sizeof exitc, "%lld", (long long)json_integer_value(ex));
            printf("%s\t%s\t%lld\t%s\t%lld\n", json_string_value(json_object_get(t, "id")),
                   json_string_value(json_object_get(t, "state")),
                   (long long)json_integer_value(json_object_get(t, "attempts")), exitc,
                   (long long)json_integer_value(json_object_get(t, "rank")));
        }
        json_t *next = json_object_get(o, "next_offset");
        offset = json_is_integer(next) ? (long)json_integer_value(next) : -1;
        json_decref(o);
        if (!list || offset < 0)
            return TSR_OK;
    }
}

int tsr_cmd_tasks(int argc, char **argv)
{
    /* argv[0] is "tasks" */
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        tsr_cmd_tasks_run_usage(argc < 2 ? stderr : stdout);
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? TSR_EINVAL : TSR_OK;
    }
    const char *cmd = argv[1], *state = NULL, *tag = NULL, *token_file = NULL;
    int list = 0, rc = TSR_OK;
    char token[4200];
    if (strcmp(cmd, "submit") && strcmp(cmd, "cancel") && strcmp(cmd, "status"))
        return tsr_cli_fail(tsr_error_set(TSR_EINVAL,
                                          "tasks: unknown %s '%s'; expected run, submit, cancel "
                                          "or status (see tessera tasks --help)",
                                          cmd[0] == '-' ? "option" : "command", cmd));
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--token-file") == 0 && i + 1 < argc)
            token_file = argv[++i];
        else if (strcmp(argv[i], "--state") == 0 && i + 1 < argc)
            state = argv[++i];
        else if (strcmp(argv[i], "--tag") == 0 && i + 1 < argc)
            tag = argv[++i];
        else if (strcmp(argv[i], "--list") == 0)
            list = 1;
        else if (strcmp(argv[i], "--help") == 0)
            return tsr_cmd_tasks_run_usage(stdout), fputs(usage, stdout), TSR_OK;
    }
    int need = strcmp(cmd, "status") == 0 ? 3 : 4;
    if (argc < need - (strcmp(cmd, "cancel") == 0 && tag ? 1 : 0) || argv[2][0] == '-')
        return tsr_cli_fail(tsr_error_set(TSR_EINVAL, "tasks %s: missing arguments (see tessera tasks --help)", cmd));
    if (token_file && (rc = read_token(token_file, token, sizeof token)))
        return tsr_cli_fail(rc);
    tsr_http_req_t q = {.where = argv[2], .token = token_file ? token : NULL};
    if (strcmp(cmd, "submit") == 0) {
        rc = argv[3][0] == '-' ? tsr_error_set(TSR_EINVAL, "tasks submit: expected a task file after the coordinator")
                               : submit(&q, argv[3]);
    } else if (strcmp(cmd, "cancel") == 0) {
        rc = cancel(&q, argc, argv, 3);
    } else {
        struct stat st;
        char jpath[4096];
        snprintf(jpath, sizeof jpath, "%s/journal", argv[2]);
        if (stat(jpath, &st) == 0) {
            if (tag)
                fprintf(stderr, "tessera: warning: --tag is not recorded in a journal; ask the coordinator\n");
            rc = tsr_tasks_journal_report(argv[2], state, list || state, stdout);
        } else {
            rc = status_url(&q, state, tag, list);
        }
    }
    return rc ? tsr_cli_fail(rc) : TSR_OK;
}
