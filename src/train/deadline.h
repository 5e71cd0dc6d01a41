/* The phase deadline (internal to src/train): a thread per rank that ends
 * the job with exit code 76 when a phase takes longer than
 * runtime.watchdog_seconds. The step watchdog (watchdog.c) covers the
 * per-step agreement, where ranks can name the missing one; this covers
 * what it cannot: set-up, whose collectives (MPI communicators, NCCL's
 * ncclCommInitRank, checkpoint broadcast) wait forever for a rank that
 * hung or never came, and the wait for a step's gradient sums, where a
 * peer whose GPU work hangs leaves NCCL waiting. The thread exits the
 * process (no MPI call from it), which makes mpirun or srun end the job. */
#ifndef TSR_TRAIN_DEADLINE_H
#define TSR_TRAIN_DEADLINE_H

typedef struct tsr_deadline tsr_deadline_t;

/* limit <= 0: no thread, and the other calls do nothing with the NULL handle. */
int tsr_deadline_create(double limit, int rank, tsr_deadline_t **out);
/* Starts timing phase (a string that outlives the phase) from now. */
void tsr_deadline_arm(tsr_deadline_t *d, const char *phase);
void tsr_deadline_disarm(tsr_deadline_t *d);
void tsr_deadline_destroy(tsr_deadline_t *d);

#endif
