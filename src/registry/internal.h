/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared between the registry's files: the object and metadata helpers. */
#ifndef TSR_REGISTRY_INTERNAL_H
#define TSR_REGISTRY_INTERNAL_H
#include "tessera/model.h"
#include "tessera/registry.h"

#include <jansson.h>
#include <pthread.h>

struct tsr_registry {
    char *dir;
    size_t max_params;  /* the model files' parameter budget (0: the default) */
    pthread_mutex_t mu; /* one writer at a time within this process */
};

/* The statuses a model may have, NULL-terminated; the first is the default. */
extern const char *const tsr_registry_statuses[];

/* Metadata for a model file just registered as id (name, version). */
json_t *reg_meta_new(const char *id, const char *name, long version, const char *source, const char *model_file,
                     const tsr_model_t *m);
/* Applies a PATCH document to meta in place; TSR_EINVAL with a message. */
int reg_meta_patch(json_t *meta, const char *patch, size_t len);
/* Writes meta to path atomically (tsr_file_write_atomic). */
int reg_meta_write(const char *path, json_t *meta);
/* Reads a JSON file of the directory: never through a symbolic link, never
 * blocking on a FIFO, at most 1 MiB. A missing file is *out = NULL with
 * missing_ok, else TSR_EDATA; a file that is not regular TSR_EIO. */
int reg_json_read(const char *path, int missing_ok, json_t **out);

/* ids.c: 1 + the highest version name ever had (files or .versions). */
int reg_next_version(const tsr_registry_t *r, const char *name, long *out);
/* Records that name has had version (never handed out again). */
int reg_version_used(const tsr_registry_t *r, const char *name, long version);
/* "name-v3" -> "name", 3. */
int reg_id_split(const char *id, char *name, size_t len, long *version);

#endif
