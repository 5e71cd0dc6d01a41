/* SPDX-License-Identifier: BSD-3-Clause */
/* Messages between ranks without blocking (internal): sends queued with
 * MPI_Isend and their buffers kept until done; receives by probing. The
 * farm's loop and the C API's dispatch share it. Only one thread calls it. */
#ifndef TSR_TASKS_MSGQ_H
#define TSR_TASKS_MSGQ_H
#include "tasks/buf.h"

#include <mpi.h>

typedef struct msgq {
    MPI_Comm comm;
    MPI_Request *req;
    tbuf_t *buf;
    int n, cap;
    tbuf_t in; /* the last message received */
} msgq_t;

void msgq_init(msgq_t *q, MPI_Comm comm);
/* Waits for the sends in flight, then frees. */
void msgq_free(msgq_t *q);
/* Sends b's bytes to dest (b is left empty). Out of memory for the queue:
 * a blocking send instead. */
void msgq_send(msgq_t *q, int dest, int tag, tbuf_t *b);
/* Frees finished sends; with wait, waits for all. */
void msgq_reap(msgq_t *q, int wait);
/* The next message waiting from source (or MPI_ANY_SOURCE): 1 with its
 * bytes in q->in, its source and tag; 0 when none waits. */
int msgq_recv(msgq_t *q, int source, int *src, int *tag);

#endif
