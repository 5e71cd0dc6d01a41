/* SPDX-License-Identifier: BSD-3-Clause */
/* Task files: one task per line, plain shell commands or JSON objects
 * (JSON Lines), with sweeps (expand.h). Parsing adds tasks to a table and
 * checks them all before anything runs: ids, keys, types, dependencies
 * (unknown ids, cycles named), resources against the largest rank
 * (internal). */
#ifndef TSR_TASKS_TASKFILE_H
#define TSR_TASKS_TASKFILE_H
#include "tasks/table.h"

typedef struct tparse_opts {
    const char *origin;    /* named in messages: the file, or "submission 3" */
    int dynamic;           /* tasks submitted to a running farm */
    int max_cores;         /* of the largest rank; 0: not checked */
    int max_gpus;          /* of the rank with most GPUs */
    int quiet;             /* no warnings */
    const char *id_prefix; /* default ids: PREFIX + line (submissions: "s3." ) */
} tparse_opts_t;

/* Parses len bytes of text. On success *added (may be NULL) gets the
 * number of tasks added (from index tt->n before the call); on failure
 * the table is as it was and the message names origin, line and task. */
int taskfile_parse(ttable_t *tt, const char *text, size_t len, const tparse_opts_t *o, uint32_t *added);
/* Reads a task file whole (refusing directories, FIFOs and devices). */
int taskfile_read(const char *path, char **text, size_t *len);
/* Is id a valid task id: 1-95 of [A-Za-z0-9._:@+=-], not starting with . or -. */
int task_id_valid(const char *id, size_t n);

/* Shared by taskfile.c and taskjson.c. */
typedef struct tpending {
    uint32_t task;
    const char *dep; /* an id, or "prefix*" */
} tpending_t;

typedef struct tparse {
    ttable_t *tt;
    const tparse_opts_t *o;
    uint32_t first; /* first task added by this parse */
    unsigned line;
    tpending_t *pend; /* dependencies to resolve once every line is in */
    size_t npend, cappend;
    tarena_t tmp; /* strings only needed while parsing */
    char *buf;    /* scratch for expansions */
    size_t bufcap;
} tparse_t;

/* Adds a task with id (NULL: the line's default, "L" or "L.k" for
 * expansion k of total) and cmd; checks the id and its uniqueness. */
task_t *tparse_task(tparse_t *p, const char *id, size_t idlen, const char *cmd, size_t cmdlen, uint64_t k,
                    uint64_t total, uint32_t *idx);
int tparse_after(tparse_t *p, uint32_t task, const char *dep, size_t n);
/* Sets the message "origin:line: ..." and returns TSR_EDATA. */
int tparse_fail(tparse_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One JSON line (taskjson.c). */
int tparse_json(tparse_t *p, const char *line, size_t n);

#endif
