/* SPDX-License-Identifier: BSD-3-Clause */
/* The message queue of msgq.h. */
#include "tasks/msgq.h"

#include <stdlib.h>
#include <string.h>

void msgq_init(msgq_t *q, MPI_Comm comm)
{
    memset(q, 0, sizeof *q);
    q->comm = comm;
}

void msgq_free(msgq_t *q)
{
    msgq_reap(q, 1);
    free(q->req);
    free(q->buf);
    tbuf_free(&q->in);
    memset(q, 0, sizeof *q);
}

void msgq_send(msgq_t *q, int dest, int tag, tbuf_t *b)
{
    if (q->n == q->cap) {
        int cap = q->cap ? 2 * q->cap : 16;
        MPI_Request *r = realloc(q->req, (size_t)cap * sizeof *r);
        tbuf_t *bb = r ? realloc(q->buf, (size_t)cap * sizeof *bb) : NULL;
        if (r)
            q->req = r;
        if (!bb) {
            MPI_Send(b->p, (int)b->len, MPI_BYTE, dest, tag, q->comm);
            b->len = 0;
            return;
        }
        q->buf = bb;
        q->cap = cap;
    }
    q->buf[q->n] = *b;
    memset(b, 0, sizeof *b);
    MPI_Isend(q->buf[q->n].p, (int)q->buf[q->n].len, MPI_BYTE, dest, tag, q->comm, &q->req[q->n]);
    q->n++;
}

void msgq_reap(msgq_t *q, int wait)
{
    for (int i = q->n - 1; i >= 0; i--) {
        int done = 1;
        if (wait)
            MPI_Wait(&q->req[i], MPI_STATUS_IGNORE);
        else
            MPI_Test(&q->req[i], &done, MPI_STATUS_IGNORE);
        if (done) {
            tbuf_free(&q->buf[i]);
            q->req[i] = q->req[--q->n];
            q->buf[i] = q->buf[q->n];
        }
    }
}

int msgq_recv(msgq_t *q, int source, int *src, int *tag)
{
    int flag = 0, count = 0;
    MPI_Status st;
    MPI_Iprobe(source, MPI_ANY_TAG, q->comm, &flag, &st);
    if (!flag)
        return 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    q->in.len = 0;
    if (!tbuf_room(&q->in, (size_t)count + 1))
        return 0;
    MPI_Recv(q->in.p, count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, q->comm, MPI_STATUS_IGNORE);
    q->in.len = (size_t)count;
    *src = st.MPI_SOURCE;
    *tag = st.MPI_TAG;
    return 1;
}
