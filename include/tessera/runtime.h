/* MPI start-up and shutdown, world and node-local ranks, logging. */
#ifndef TESSERA_RUNTIME_H
#define TESSERA_RUNTIME_H
#include <mpi.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tsr_runtime tsr_runtime_t;

/* Initialises MPI (MPI_THREAD_FUNNELED at least) unless it already is, and
 * learns world and node-local ranks. */
int tsr_runtime_create(int *argc, char ***argv, tsr_runtime_t **out);
/* Finalises MPI if tsr_runtime_create initialised it. Accepts NULL. */
void tsr_runtime_destroy(tsr_runtime_t *rt);

int tsr_runtime_rank(const tsr_runtime_t *rt);
int tsr_runtime_size(const tsr_runtime_t *rt);
int tsr_runtime_local_rank(const tsr_runtime_t *rt);
int tsr_runtime_local_size(const tsr_runtime_t *rt);
int tsr_runtime_node_id(const tsr_runtime_t *rt);   /* 0..node_count-1 */
int tsr_runtime_node_count(const tsr_runtime_t *rt);
const char *tsr_runtime_hostname(const tsr_runtime_t *rt);
MPI_Comm tsr_runtime_world(const tsr_runtime_t *rt);
MPI_Comm tsr_runtime_node(const tsr_runtime_t *rt); /* ranks on this node */

/* Collective over the world: every rank passes its own result code and all
 * get back the code of the lowest failing rank (TSR_OK if none failed);
 * *failed_rank (may be NULL) is that rank, or -1. This is how ranks agree to
 * stop together instead of one exiting while the others hang. */
int tsr_runtime_agree(tsr_runtime_t *rt, int rc, int *failed_rank);

/* Logging. Lines from rank 0 read "tessera: msg"; others "tessera[rank N]: msg".
 * info goes to stdout from rank 0 only (or every rank if verbose);
 * warn and error go to stderr from whichever rank calls them. */
enum { TSR_LOG_ERROR = 0, TSR_LOG_WARN = 1, TSR_LOG_INFO = 2, TSR_LOG_DEBUG = 3 };
void tsr_log_set_rank(int rank, int size);
void tsr_log_set_level(int level);
void tsr_log_set_all_ranks(int on);
void tsr_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tsr_vlog(int level, const char *fmt, va_list ap);

/* Signals: SIGTERM, SIGUSR1 and SIGINT record a stop request (the first
 * signal's number) that the training loop checks at step boundaries; a
 * second SIGINT exits at once with status 130. Returns 0 or -1. */
int tsr_runtime_install_signals(void);
/* The signal that asked to stop, or 0. */
int tsr_runtime_stop_signal(void);
/* Records a stop request as if sig had arrived (walltime margins, tests). */
void tsr_runtime_request_stop(int sig);

/* Wall-clock seconds from a monotonic clock. */
double tsr_time_now(void);

#ifdef __cplusplus
}
#endif
#endif
