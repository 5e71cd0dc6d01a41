/* SPDX-License-Identifier: BSD-3-Clause */
/* `tessera serve`: the coordinator without training, on a model file or a
 * registry, until SIGINT or SIGTERM. No MPI: it runs on a login node or in
 * a one-task job. */
#include "cli/commands.h"
#include "common/fileutil.h"
#include "tessera/config.h"
#include "tessera/options.h"
#include "tessera/error.h"
#include "tessera/layer.h"
#include "tessera/place.h"
#include "tessera/registry.h"
#include "tessera/serve.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: tessera serve MODEL_OR_REGISTRY [--bind ADDR] [--port P] [--token-file F] [--run-dir D]\n"
    "                     [--registry DIR] [--config FILE] [--set serve.key=value ...] [--plugins LIST]\n"
    "\n"
    "Runs the HTTP coordinator without training until SIGINT or SIGTERM. MODEL_OR_REGISTRY is an\n"
    "HDF5 model file, or a registry directory: its newest model with status \"production\" is\n"
    "served (else its newest model), and the /models routes use it.\n"
    "  --bind ADDR        listen address (default 127.0.0.1; any other needs --token-file)\n"
    "  --port P           TCP port (default 0: any free port)\n"
    "  --token-file F     bearer token file, not readable by others\n"
    "  --run-dir D        where coordinator.addr (host:port) is written (default .)\n"
    "  --registry DIR     model registry for the /models routes (default: registry)\n"
    "  --config FILE      an INI file whose [serve] section sets the rest (see --set)\n"
    "  --plugins LIST     layer plugins (.so, comma-separated) the models need, as [model] plugins\n"
    "  --set K=V          any [serve] key: max_batch, max_delay_us, cache_mb, cache_ttl_s,\n"
    "                     max_body_kb, max_upload_mb, threads, max_connections,\n"
    "                     max_connections_per_ip, header_timeout_s, max_model_params\n"
    "Routes: GET / (dashboard), /health, /status, /metrics, /cache, /models...; POST /predict.\n";

/* The model a registry directory serves: production first, else newest. */
static int pick(const char *dir, char *path, size_t len)
{
    tsr_registry_t *reg = NULL;
    char id[TSR_REGISTRY_ID_MAX];
    int rc = tsr_registry_create(dir, &reg);
    if (rc == TSR_OK && (rc = tsr_registry_latest(reg, "production", id, sizeof id)) != TSR_OK)
        rc = tsr_registry_latest(reg, NULL, id, sizeof id);
    if (rc == TSR_OK)
        rc = tsr_registry_model_path(reg, id, path, len);
    tsr_registry_destroy(reg);
    return rc;
}

int tsr_cmd_serve(int argc, char **argv)
{
    const char *target = NULL, *bind = NULL, *port = NULL, *token = NULL, *run_dir = NULL, *registry = NULL;
    const char *plugins = NULL;
    tsr_config_t *conf = NULL;
    int rc = tsr_config_create(&conf);
    if (rc)
        return tsr_cli_fail(rc);
    for (int i = 1; i < argc && rc == TSR_OK; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            tsr_config_destroy(conf);
            return TSR_OK;
        } else if (strcmp(a, "--bind") == 0 && has) {
            bind = argv[++i];
        } else if (strcmp(a, "--port") == 0 && has) {
            port = argv[++i];
        } else if (strcmp(a, "--token-file") == 0 && has) {
            token = argv[++i];
        } else if (strcmp(a, "--run-dir") == 0 && has) {
            run_dir = argv[++i];
        } else if (strcmp(a, "--registry") == 0 && has) {
            registry = argv[++i];
        } else if (strcmp(a, "--config") == 0 && has) {
            rc = tsr_config_load(conf, argv[++i]);
        } else if (strcmp(a, "--set") == 0 && has) {
            rc = tsr_config_set(conf, argv[++i]);
        } else if (strcmp(a, "--plugins") == 0 && has) {
            plugins = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            static const char *const valued[] = {"--bind",   "--port", "--token-file", "--run-dir", "--registry",
                                                 "--config", "--set",  "--plugins",    NULL};
            rc = tsr_cli_bad_option("serve", a, valued);
        } else if (target) {
            rc = tsr_error_set(TSR_EINVAL, "serve: unexpected argument '%s' besides %s (see tessera serve --help)", a,
                               target);
        } else {
            target = a;
        }
    }
    char portset[64], path[4096];
    if (rc == TSR_OK && !target)
        rc = tsr_error_set(TSR_EINVAL, "serve: expected a model file or registry directory (see tessera serve --help)");
    if (rc == TSR_OK && port && snprintf(portset, sizeof portset, "serve.port=%s", port) < (int)sizeof portset)
        rc = tsr_config_set(conf, portset);
    tsr_serve_config_t sc;
    if (rc == TSR_OK)
        rc = tsr_options_serve(conf, &sc);
    if (rc) {
        tsr_config_destroy(conf);
        return tsr_cli_fail(rc);
    }
    sc.bind = bind ? bind : sc.bind;
    sc.token_file = token ? token : sc.token_file;
    sc.run_dir = run_dir ? run_dir : sc.run_dir;
    sc.registry = registry ? registry : sc.registry;
    struct stat st;
    const char *model_path = target;
    if (stat(target, &st) != 0) {
        rc = tsr_error_set(TSR_EDATA, "serve: %s: %s", target, strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        sc.registry = registry ? registry : target;
        model_path = pick(target, path, sizeof path) == TSR_OK ? path : NULL;
        if (!model_path)
            fprintf(stderr,
                    "tessera: warning: %s has no model yet; /predict answers 503 until one is uploaded "
                    "and the coordinator restarted\n",
                    target);
    }
    /* The one file serve writes must not be one it reads. */
    char addr[4096];
    const char *inputs[3] = {model_path, sc.token_file, tsr_config_file(conf)};
    if (rc == TSR_OK && (rc = tsr_path_join(sc.run_dir, "coordinator.addr", addr, sizeof addr)) == TSR_OK &&
        (rc = tsr_file_check_output(addr, inputs, 3)) != TSR_OK)
        tsr_error_prefix(rc, "serve: --run-dir %s: ", sc.run_dir);
    tsr_model_t *m = NULL;
    if (rc == TSR_OK && plugins && (rc = tsr_layer_load_plugins(plugins, NULL)) != TSR_OK)
        tsr_error_prefix(rc, "serve: --plugins: ");
    if (rc == TSR_OK && model_path)
        rc = tsr_model_load_max(model_path, 1, sc.max_model_params, &m);
    if (rc) {
        tsr_config_destroy(conf);
        return tsr_cli_fail(rc);
    }
    /* One BLAS thread: the batcher's model calls are small, and OpenBLAS
     * workers spinning between them would take the cores the HTTP threads
     * need (about a third of the uncached throughput on 2 cores). */
    tsr_place_set_blas_threads(1);
    /* Block the stop signals before the server's threads start, so they
     * inherit the mask and only sigwait below ever sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    tsr_serve_t *s = NULL;
    rc = tsr_serve_create(&sc, &s);
    if (rc == TSR_OK && m)
        rc = tsr_serve_publish_model(s, m);
    if (rc == TSR_OK && model_path)
        rc = tsr_serve_set_model_source(s, model_path);
    tsr_model_destroy(m);
    if (rc) {
        tsr_serve_destroy(s);
        tsr_config_destroy(conf);
        return tsr_cli_fail(rc);
    }
    printf("tessera: serving %s on port %d (address in %s/coordinator.addr; Ctrl-C stops)\n",
           model_path ? model_path : "no model", tsr_serve_port(s), sc.run_dir);
    fflush(stdout);
    tsr_config_destroy(conf); /* sc's strings point into it */
    int sig = 0;
    sigwait(&set, &sig);
    printf("tessera: %s: stopping the coordinator\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    tsr_serve_destroy(s);
    return TSR_OK;
}
