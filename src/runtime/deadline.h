/* SPDX-License-Identifier: BSD-3-Clause */
/* The phase deadline (internal to src/runtime): a thread per rank that ends
 * the job with exit code 76 when a phase takes longer than the watchdog's
 * limit. The watchdog (watchdog.c) watches every wait it is given (an MPI
 * request, or a loop that polls it) and there the ranks that arrived name
 * the missing ones; this backstop covers the blocking calls nobody can
 * poll: communicator and window creation, NCCL's ncclCommInitRank,
 * MPI_Finalize. The thread exits the process (no MPI call from it), which
 * makes mpirun or srun end the job. */
#ifndef TSR_RUNTIME_DEADLINE_H
#define TSR_RUNTIME_DEADLINE_H

typedef struct tsr_deadline tsr_deadline_t;

/* limit <= 0: no thread, and the other calls do nothing with the NULL handle. */
int tsr_deadline_create(double limit, int rank, tsr_deadline_t **out);
/* Starts timing phase (a string that outlives the phase) from now. */
void tsr_deadline_arm(tsr_deadline_t *d, const char *phase);
void tsr_deadline_disarm(tsr_deadline_t *d);
void tsr_deadline_destroy(tsr_deadline_t *d);

#endif
