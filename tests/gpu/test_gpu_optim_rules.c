/* SPDX-License-Identifier: BSD-3-Clause */
/* Adam, Lion, RMSprop, LARS and LAMB through tsr_optim on the GPU against
 * the same optimizer on the CPU: the weights and the state after each of a
 * few steps, over tensors (segments) with an excluded one; a skipped
 * update (NaN gradients, on_nonfinite = skip) counted once however many
 * launches make it, and the non-finite note (NaN or infinite gradients). Exits 77 without a GPU. */
#include "gpu_test.h"
#include "tessera/optim.h"

enum { N = 3001, STEPS = 4 };
static const tsr_optim_segment_t segs[3] = {{0, 2000, 0}, {2000, 1000, 0}, {3000, 1, 1}};

static tsr_optim_config_t config(tsr_optim_kind_t kind)
{
    tsr_optim_config_t c = {.kind = kind,
                            .lr = 0.01,
                            .weight_decay = 0.05,
                            .beta1 = 0.9,
                            .beta2 = 0.99,
                            .eps = 1e-8,
                            .alpha = 0.99,
                            .trust_coef = 0.02,
                            .schedule = TSR_SCHED_CONSTANT};
    return c;
}

/* Runs c on both sides; grads[STEPS][N] from the same seed, one of them
 * made bad (NaN or Inf) at step nan_at. */
static void compare_bad(const char *name, tsr_optim_config_t c, int nan_at, float bad)
{
    tsr_optim_t *cpu = NULL, *gpu = NULL;
    CK(tsr_optim_create(&c, N, &cpu));
    CK(tsr_optim_create(&c, N, &gpu));
    CK(tsr_optim_set_segments(cpu, segs, 3));
    CK(tsr_optim_set_segments(gpu, segs, 3));
    CK(tsr_optim_to_gpu(gpu, G));
    float *p = hrand(N, -1, 1), *dp = dev(p, N * 4), *dg = dev(NULL, N * 4);
    char what[128];
    for (int s = 0; s < STEPS; s++) {
        float *g = hrand(N, -0.5f, 0.5f);
        if (s == nan_at)
            g[2500] = bad;
        CK(tsr_gpu_upload(G, dg, g, N * 4));
        CK(tsr_optim_step(cpu, p, g, NULL));
        CK(tsr_optim_step(gpu, dp, dg, NULL));
        snprintf(what, sizeof what, "%s: weights after step %d", name, s + 1);
        if (nan_at < 0 || c.on_nonfinite == TSR_NONFINITE_SKIP)
            cmp_dev(what, dp, p, N, 1e-6);
        free(g);
    }
    size_t ns, ng;
    float *sc = tsr_optim_state(cpu, &ns);
    float *keep = ns ? dup_mem(sc, ns * 4) : NULL;
    CK(tsr_optim_download(gpu));
    float *sg = tsr_optim_state(gpu, &ng);
    check("state sizes agree", ns == ng);
    if (ns && (nan_at < 0 || c.on_nonfinite == TSR_NONFINITE_SKIP)) {
        snprintf(what, sizeof what, "%s: state (%zu values)", name, ns);
        cmp(what, sg, keep, ns, 1e-6);
    }
    if (nan_at >= 0) {
        snprintf(what, sizeof what, "%s: skipped and non-finite notes agree (%ld, %ld)", name,
                 tsr_optim_skipped_steps(cpu), tsr_optim_nonfinite_step(cpu));
        check(what, tsr_optim_skipped_steps(gpu) == tsr_optim_skipped_steps(cpu) &&
                        tsr_optim_nonfinite_step(gpu) == tsr_optim_nonfinite_step(cpu) &&
                        (c.on_nonfinite == TSR_NONFINITE_SKIP ? tsr_optim_skipped_steps(cpu) == 1
                                                              : tsr_optim_nonfinite_step(cpu) == nan_at + 1));
    }
    free(keep);
    free(p);
    tsr_gpu_free(G, dp), tsr_gpu_free(G, dg);
    tsr_optim_destroy(cpu), tsr_optim_destroy(gpu);
}

static void compare(const char *name, tsr_optim_config_t c, int nan_at) { compare_bad(name, c, nan_at, NAN); }

int main(void)
{
    gpu_test_start();
    tsr_optim_config_t c;
    compare("adam", config(TSR_OPTIM_ADAM), -1);
    compare("lion", config(TSR_OPTIM_LION), -1);
    compare("rmsprop", config(TSR_OPTIM_RMSPROP), -1);
    c = config(TSR_OPTIM_RMSPROP), c.centered = 1, c.momentum = 0.5;
    compare("rmsprop centered, momentum", c, -1);
    c = config(TSR_OPTIM_LARS), c.lr = 1, c.momentum = 0.9;
    compare("lars", c, -1);
    c.momentum = 0;
    compare("lars without momentum", c, -1);
    compare("lamb", config(TSR_OPTIM_LAMB), -1);
    tsr_optim_kind_t kinds[] = {TSR_OPTIM_ADAM, TSR_OPTIM_LION, TSR_OPTIM_RMSPROP, TSR_OPTIM_LARS, TSR_OPTIM_LAMB};
    for (int k = 0; k < 5; k++) {
        char name[64];
        c = config(kinds[k]);
        c.on_nonfinite = TSR_NONFINITE_SKIP;
        snprintf(name, sizeof name, "%s, NaN gradients skipped", tsr_optim_kind_name(kinds[k]));
        compare(name, c, 2);
        c.on_nonfinite = TSR_NONFINITE_STOP;
        snprintf(name, sizeof name, "%s, NaN gradients noted", tsr_optim_kind_name(kinds[k]));
        compare(name, c, 2);
        snprintf(name, sizeof name, "%s, infinite gradients noted", tsr_optim_kind_name(kinds[k]));
        compare_bad(name, c, 2, INFINITY);
    }
    return gpu_test_end();
}
