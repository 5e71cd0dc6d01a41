/* SPDX-License-Identifier: BSD-3-Clause */
/* The farm's journal: DIR/journal, an append-only file of records, each
 * [u32 length][u32 length ^ 0xa5a5a5a5][u32 CRC-32 of the payload][payload],
 * the payload a type byte and fields (buf.h encoding). The length's copy
 * tells a damaged length (refused) from a record cut short by a crash
 * (ignored when it is the last). Appends go to a memory buffer; a
 * writer thread writes and fsyncs it at most every fsync_ms (group
 * commit), so the dispatcher never waits for the disk. An OFD lock on the
 * file keeps a second farm out. A write that fails (ENOSPC, EIO) is cut
 * back to the last whole record, so the file stays replayable, and
 * journal_error() says so (internal). */
#ifndef TSR_TASKS_JOURNAL_H
#define TSR_TASKS_JOURNAL_H
#include "tasks/buf.h"

#include <stdint.h>

enum jrec_type {
    J_HEADER = 1, /* str magic, u32 version */
    J_RUN,        /* u32 run, f64 time, u32 ranks, str taskfile, u64 file tasks, str host, u32 pid */
    J_SUBMIT,     /* f64 time, str origin, str text (task-file lines) */
    J_START,      /* str id, u16 attempt, u16 rank, f64 start, str where */
    J_FINISH,     /* str id, u16 attempt, u8 how, i32 code, u8 state, f64 start, f64 end, u16 rank, str tail */
    J_CANCEL,     /* str id */
    J_STOP,       /* f64 time, i32 signal (0: journal error), str reason */
    J_END         /* f64 time: every task final */
};
#define JOURNAL_MAGIC "tessera-tasks-journal"
#define JOURNAL_VERSION 1
enum { JOURNAL_HEADER = 12 };

typedef struct journal journal_t;

/* Calls fn for each whole record of a journal's bytes; *good gets the
 * length of the replayable prefix, *torn whether a partial last record
 * follows it. A damaged record with records after it is an error naming
 * its number and offset (TSR_EDATA); so is a file that is not a journal.
 * fn returns TSR_OK or an error, which stops the scan. */
typedef int (*journal_fn)(void *ctx, unsigned type, tcur_t *payload, uint64_t number);
int journal_scan(const char *path, const unsigned char *p, size_t n, journal_fn fn, void *ctx, size_t *good, int *torn);

/* Opens (creating) DIR/journal for a farm: the directory is made if
 * missing; the lock refused if another farm holds it (TSR_EINVAL, naming
 * its host and pid); existing records are replayed through fn, a torn last
 * record cut off with a warning. Starts the writer thread. */
int journal_open(const char *dir, double fsync_ms, journal_fn fn, void *ctx, journal_t **out);
/* Flushes, fsyncs, stops the thread, unlocks. Accepts NULL. */
void journal_close(journal_t *j);
/* Reads a journal without locking (tessera tasks status). */
int journal_read(const char *dir, journal_fn fn, void *ctx);

/* Appending: begin gives a buffer to put the payload in (after the type
 * byte, which begin writes); end seals the record. Between the two the
 * journal's lock is held: keep it short. */
tbuf_t *journal_begin(journal_t *j, unsigned type);
void journal_end(journal_t *j);
/* Waits until everything appended so far is on disk (fsynced). */
int journal_sync(journal_t *j);
/* TSR_OK, or the error that stopped the writer (message in *msg). */
int journal_error(journal_t *j, const char **msg);
const char *journal_path(const journal_t *j);
void journal_counters(journal_t *j, uint64_t *records, uint64_t *fsyncs, uint64_t *bytes);

#endif
