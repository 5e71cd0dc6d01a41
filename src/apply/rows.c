/* SPDX-License-Identifier: BSD-3-Clause */
/* Rows functions (predict, normalize, a plugin's map): every partition's
 * rows in, the same rows of the output's datasets out.
 *
 * Partitions come from the dynamic counter, but HDF5's collective writes
 * need every rank in the same call. The partitions are therefore grouped
 * in rounds of consecutive ids (4 per rank, fewer when a round's output
 * would pass OUT_BUDGET): a rank whose next partition lies past a round
 * first writes what it did in that round, collectively. Every partition of
 * a round has been taken by then and its taker has finished it (it enters
 * the write only after its next take), so after the write the whole round
 * is in the file: it is flushed and journalled. (A rank takes one partition
 * ahead, to prefetch it; that one is still finished before any later one,
 * so the argument holds.) Within a round a slow rank
 * takes fewer partitions; at its end the others wait for its last one. */
#include "apply/internal.h"

#include "tessera/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_BUDGET ((size_t)256 << 20)

typedef struct round {
    size_t per, count, nmine, rows;
    size_t *mine;
    char *buf[APPLY_MAX_OUT];
} round_t;

static size_t row_bytes(const apply_rows_fn_t *fn, int i) { return (fn->out[i].width ? fn->out[i].width : 1) * 4; }

/* The round's collective write; after a failure anywhere, no rank writes. */
static int flush(apply_out_t *o, round_t *r, size_t round, int rc)
{
    int bad = rc != TSR_OK, any;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, o->comm);
    if (!any) {
        size_t first = round * r->per, cnt = first + r->per > o->nparts ? o->nparts - first : r->per;
        rc = apply_out_write(o, r->mine, r->nmine, (void *const *)r->buf, first, cnt);
    }
    r->nmine = 0;
    r->rows = 0;
    return rc;
}

int apply_rows_run(MPI_Comm comm, apply_input_t *in, size_t part_rows, const char *output, uint32_t fingerprint,
                   const apply_rows_fn_t *fn)
{
    int size;
    MPI_Comm_size(comm, &size);
    apply_out_t o;
    int rc = apply_out_open(&o, comm, output, fn->out, fn->nout, in->n, part_rows, fingerprint);
    if (rc)
        return rc;
    if (fn->setup && !o.resumed)
        rc = fn->setup(fn->ctx, &o);
    if (o.resumed && o.rank == 0) {
        size_t done = 0;
        for (size_t p = 0; p < o.nparts; p++)
            done += o.done[p];
        fprintf(stderr, "tessera: apply: resuming %s: %zu of %zu partitions were written before\n", output, done,
                o.nparts);
    }
    round_t r = {0};
    size_t rowb = 0;
    for (int i = 0; i < fn->nout; i++)
        rowb += row_bytes(fn, i);
    r.per = OUT_BUDGET / (part_rows * rowb);
    r.per = r.per < 1 ? 1 : r.per > (size_t)size * 4 ? (size_t)size * 4 : r.per;
    r.per = r.per > o.nparts ? o.nparts : r.per;
    size_t nrounds = (o.nparts + r.per - 1) / r.per, round = 0;
    float *x = malloc(part_rows * in->ncols * sizeof *x);
    r.mine = malloc(r.per * sizeof *r.mine);
    int nomem = !x || !r.mine;
    for (int i = 0; i < fn->nout; i++)
        nomem |= !(r.buf[i] = malloc(r.per * part_rows * row_bytes(fn, i)));
    if (rc == TSR_OK && nomem)
        rc = tsr_error_set(TSR_ENOMEM, "apply: out of memory for rounds of %zu partitions of %zu rows", r.per,
                           part_rows);
    apply_sched_t s;
    int src = apply_sched_create(comm, o.nparts, o.done, &s);
    if (rc && src == TSR_OK)
        apply_sched_abort(&s);
    rc = rc ? rc : src;
    for (;;) {
        size_t v = rc ? o.nparts : apply_sched_next_ahead(&s, in, part_rows);
        size_t rv = v < o.nparts ? v / r.per : nrounds;
        while (round < rv && round < nrounds) {
            int frc = flush(&o, &r, round++, rc);
            rc = rc ? rc : frc;
        }
        if (v >= o.nparts)
            break;
        size_t first = v * part_rows, cnt = first + part_rows > in->n ? in->n - first : part_rows;
        void *outp[APPLY_MAX_OUT];
        for (int i = 0; i < fn->nout; i++)
            outp[i] = r.buf[i] + r.rows * row_bytes(fn, i);
        int prc = apply_input_read(in, first, cnt, x);
        if (prc == TSR_OK)
            prc = fn->map(fn->ctx, x, cnt, first, outp);
        if (prc) {
            rc = tsr_error_prefix(prc, "partition %zu (rows %zu to %zu): ", v, first, first + cnt - 1);
            apply_sched_abort(&s);
        } else {
            r.mine[r.nmine++] = v;
            r.rows += cnt;
        }
    }
    if (src == TSR_OK)
        apply_sched_destroy(&s);
    rc = apply_agree(comm, rc);
    int crc = apply_out_close(&o, rc == TSR_OK, fn->inputs, fn->ninputs);
    free(x);
    free(r.mine);
    for (int i = 0; i < fn->nout; i++)
        free(r.buf[i]);
    return rc ? rc : crc;
}
