/* SPDX-License-Identifier: BSD-3-Clause */
/* MPI start-up and shutdown, world and node-local ranks, agreement, the
 * watchdog over collectives, signals, the job's walltime. Logging and the
 * clock are in log.h, SLURM's job facts and batch jobs in slurm.h. */
#ifndef TESSERA_RUNTIME_H
#define TESSERA_RUNTIME_H
#include "tessera/api.h"
#include <mpi.h>
#include "tessera/log.h"
#include "tessera/slurm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tsr_runtime tsr_runtime_t;

/* Initialises MPI (MPI_THREAD_FUNNELED at least) unless it already is, and
 * learns world and node-local ranks. In a SimGrid build (TSR_SIMGRID)
 * SMPI's MPI_THREAD_SINGLE is accepted and helper threads are off. */
TSR_API int tsr_runtime_create(int *argc, char ***argv, tsr_runtime_t **out);
/* 1 when helper threads (prefetch, asynchronous checkpoints, watchdogs)
 * may run beside the MPI thread; 0 under SimGrid's SMPI, which simulates
 * every rank in one process and offers MPI_THREAD_SINGLE only. */
TSR_API int tsr_runtime_helper_threads(const tsr_runtime_t *rt);
/* Finalises MPI if tsr_runtime_create initialised it. Accepts NULL. */
TSR_API void tsr_runtime_destroy(tsr_runtime_t *rt);

/* A runtime over a part of rt's world (MPI_Comm_split by color, ordered by
 * key): its own world, node-local ranks, watchdog and agreement, so a
 * training runs on it as on a whole job (a sweep's trial). MPI stays
 * initialised until the parent goes; destroy the child first. The log keeps
 * the parent's rank numbers. Collective over rt's world. */
TSR_API int tsr_runtime_split(tsr_runtime_t *rt, int color, int key, tsr_runtime_t **out);
TSR_API int tsr_runtime_rank(const tsr_runtime_t *rt);
TSR_API int tsr_runtime_size(const tsr_runtime_t *rt);
TSR_API int tsr_runtime_local_rank(const tsr_runtime_t *rt);
TSR_API int tsr_runtime_local_size(const tsr_runtime_t *rt);
TSR_API int tsr_runtime_node_id(const tsr_runtime_t *rt); /* 0..node_count-1 */
TSR_API int tsr_runtime_node_count(const tsr_runtime_t *rt);
TSR_API const char *tsr_runtime_hostname(const tsr_runtime_t *rt);
TSR_API MPI_Comm tsr_runtime_world(const tsr_runtime_t *rt);
TSR_API MPI_Comm tsr_runtime_node(const tsr_runtime_t *rt); /* ranks on this node */

/* Collective over the world (under the watchdog): every rank passes its own
 * result code and all get back the code of the lowest failing rank (TSR_OK if none failed);
 * *failed_rank (may be NULL) is that rank, or -1. This is how ranks agree to
 * stop together instead of one exiting while the others hang. */
TSR_API int tsr_runtime_agree(tsr_runtime_t *rt, int rc, int *failed_rank);

/* The watchdog over collectives. Every collective a job makes is waited
 * for under it: past the limit, the ranks that are waiting tell each other
 * so (point to point, on a communicator of its own), the lowest of them
 * names the ranks that did not arrive, with host and pid, in one error
 * line, and aborts the job with exit code 76. Every rank is gone within the
 * limit plus a grace of a quarter of it (2 to 10 s). Blocking calls that
 * cannot be polled (communicator creation, NCCL set-up, MPI_Finalize) are
 * covered by a phase deadline instead: a thread that ends the process with
 * exit code 76 and a line naming the phase. */
/* Collective. seconds <= 0: no watchdog (waits block, as MPI's do). */
TSR_API int tsr_runtime_watchdog_start(tsr_runtime_t *rt, double seconds);
TSR_API double tsr_runtime_watchdog_limit(const tsr_runtime_t *rt);
/* Names the phase the deadline times from now (a string that outlives it);
 * NULL ends it. Watched waits pause it. */
TSR_API void tsr_runtime_phase(tsr_runtime_t *rt, const char *phase);
/* Waits for req, which completes only when other ranks take part; what
 * ("the loss average") and step (or -1) say where, for the report. Never
 * returns once the limit has passed. */
TSR_API int tsr_runtime_wait(tsr_runtime_t *rt, MPI_Request *req, const char *what, long step);
/* The same for a wait that is a loop of its own (the gradient engine's):
 * begin, poll in the loop (never returns past the limit), end. */
TSR_API void tsr_runtime_watch_begin(tsr_runtime_t *rt, const char *what, long step);
TSR_API void tsr_runtime_watch_poll(tsr_runtime_t *rt);
TSR_API void tsr_runtime_watch_end(tsr_runtime_t *rt);
/* Collectives over the world, nonblocking underneath and waited for under
 * the watchdog. Return TSR_OK or TSR_EMPI with a message naming what. */
TSR_API int tsr_runtime_allreduce(tsr_runtime_t *rt, const void *in, void *out, int count, MPI_Datatype type, MPI_Op op,
                                  const char *what, long step);
TSR_API int tsr_runtime_bcast(tsr_runtime_t *rt, void *buf, int count, MPI_Datatype type, int root, const char *what);
TSR_API int tsr_runtime_gather(tsr_runtime_t *rt, const void *in, int count, MPI_Datatype type, void *out, int root,
                               const char *what, long step);
TSR_API int tsr_runtime_barrier(tsr_runtime_t *rt, const char *what);

/* Signals: SIGTERM, SIGUSR1 and SIGINT record a stop request (the first
 * signal's number) that the training loop checks at step boundaries; a
 * second SIGINT, or SIGUSR2, exits at once with status 130. Returns 0 or -1. */
TSR_API int tsr_runtime_install_signals(void);
/* The signal that asked to stop, or 0. */
TSR_API int tsr_runtime_stop_signal(void);
/* Records a stop request as if sig had arrived (walltime margins, tests). */
TSR_API void tsr_runtime_request_stop(int sig);

/* The SLURM facts read when the runtime started (slurm.h). */
TSR_API const tsr_slurm_facts_t *tsr_runtime_slurm(const tsr_runtime_t *rt);

/* Whether this rank's standard output reaches a terminal a user watches,
 * as runtime.progress = auto asks: under Open MPI's mpirun or orted, which
 * give each rank a pseudo-terminal, that is whether the launcher's own
 * stdout is one (`mpirun ... > log` is a log, whatever the rank sees);
 * under srun or alone, whether the rank's stdout is. */
TSR_API int tsr_runtime_stdout_is_terminal(void);

/* Seconds of walltime the job has left, or a negative value if unknown (not
 * under SLURM, or the end time cannot be learnt). Cheap enough for every
 * step: the end time is cached and asked of slurmctld (libslurm) at most
 * every 30 s; otherwise it costs a clock read. */
TSR_API double tsr_runtime_walltime_left(tsr_runtime_t *rt);
/* The job's whole time limit in seconds (libslurm), or a negative value. */
TSR_API double tsr_runtime_walltime_limit(tsr_runtime_t *rt);

#ifdef __cplusplus
}
#endif
#endif
