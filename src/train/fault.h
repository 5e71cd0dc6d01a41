/* SPDX-License-Identifier: BSD-3-Clause */
/* Fault injection for tests, behind one hook (internal to src/train).
 * TSR_FAULT_KILL and TSR_FAULT_STALL in the environment, each "RANK:STEP"
 * (after global step STEP; a STEP of 0 means the point "setup") or
 * "RANK:@POINT" for a named point of the run: setup (before the gradient
 * engine), resume (before the checkpoint broadcast), sums (after the
 * first step's agreement, before its gradient sums are waited for: the
 * others wait in the allreduce's rounds for what it has not sent), eval
 * (before an evaluation's sum), end (before the end-of-training
 * agreement). KILL makes that rank SIGKILL itself there, STALL makes it
 * hang (sleep forever), as a dead node or a stuck file system would.
 * TSR_FAULT_SLOW="RANK:FACTOR" (1 < FACTOR <= 1e6) makes that rank's compute take
 * FACTOR times as long (it sleeps inside backward), as a slow or busy node
 * would: the bottleneck report must name it. */
#ifndef TSR_TRAIN_FAULT_H
#define TSR_TRAIN_FAULT_H

typedef struct tsr_fault {
    int rank;  /* -1: none */
    long step; /* -1: at a named point */
    char point[16];
} tsr_fault_t;

typedef struct tsr_faults {
    tsr_fault_t kill, stall;
    int slow_rank; /* -1: none */
    double slow_factor;
} tsr_faults_t;

/* Reads the environment (a malformed value is ignored: no fault). */
void tsr_faults_read(tsr_faults_t *f);
/* Acts if a fault is set for this rank after global step `step`. */
void tsr_fault_step(const tsr_faults_t *f, int rank, long step);
/* Acts if a fault is set for this rank at the named point. */
void tsr_fault_point(const tsr_faults_t *f, int rank, const char *point);

/* TSR_FAULT_SLOW: stretches `seconds` of this rank's compute to FACTOR times. */
void tsr_fault_slow(const tsr_faults_t *f, int rank, double seconds);

#endif
