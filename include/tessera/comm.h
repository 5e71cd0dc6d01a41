/* The gradient reduction engine. A flat float buffer is cut into buckets
 * (from the end, since backward produces the last layer first); each bucket
 * is summed across ranks as soon as it is marked ready, and tsr_comm_wait
 * finishes them all. The sum for every element is taken in rank order
 * 0,1,...,P-1 whatever the timing, so results are bit-reproducible for a
 * given world size.
 *
 * Back-ends (Open MPI component style, chosen by name at create):
 *   "mpi": reduce-scatter by MPI_Ialltoallv, a rank-ordered local sum of the
 *          slice this rank owns, then MPI_Iallgatherv of the sums.
 *   "shm": ranks on a node sum through an MPI-3 shared-memory window, chunk
 *          by chunk, in local-rank order; one leader per node runs "mpi"
 *          across nodes (sum order: local ranks, then nodes). See
 *          src/comm/backend_shm.c.
 *   "auto": "shm" when some node holds more than one rank, else "mpi". */
#ifndef TESSERA_COMM_H
#define TESSERA_COMM_H
#include <mpi.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tsr_comm tsr_comm_t;

/* Binds an engine to buf[0..n) on comm (which it duplicates). bucket_bytes
 * is rounded to whole floats; 0 means one bucket. All scratch memory is
 * allocated here: the per-step calls allocate nothing. Collective. */
int tsr_comm_create(MPI_Comm comm, const char *backend, float *buf, size_t n, size_t bucket_bytes,
                    tsr_comm_t **out);
void tsr_comm_destroy(tsr_comm_t *c);

const char *tsr_comm_backend(const tsr_comm_t *c);
size_t tsr_comm_nbuckets(const tsr_comm_t *c);

/* Declares buf[offset..n) final for this step: every bucket lying wholly in
 * it that has not started yet starts now (buckets start in order from the
 * end of the buffer, on every rank). Also drives progress of buckets in
 * flight. Call with offset 0 (or call tsr_comm_wait) to start the rest. */
int tsr_comm_ready_from(tsr_comm_t *c, size_t offset);
/* Starts whatever has not started and waits until buf holds the sums.
 * The engine is then ready for the next step. */
int tsr_comm_wait(tsr_comm_t *c);
/* tsr_comm_ready_from(c, 0) + tsr_comm_wait(c). */
int tsr_comm_allreduce(tsr_comm_t *c);

/* Seconds spent inside tsr_comm_wait in the last step (the part of the
 * reduction that was not hidden behind compute). */
double tsr_comm_last_wait_seconds(const tsr_comm_t *c);

#ifdef __cplusplus
}
#endif
#endif
