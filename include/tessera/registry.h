/* SPDX-License-Identifier: BSD-3-Clause */
/* The model registry: a directory of model files, each <id>.h5 beside its
 * metadata <id>.json. Ids are "<name>-v<version>" with name made of
 * [A-Za-z0-9._-] and the version counting up per name, so an id can never
 * name a path outside the directory; a version is never handed out twice,
 * even after a delete and a restart (<dir>/.versions keeps the highest). Safe to use from many threads; several
 * processes may share a directory (ids are reserved with link(2), metadata
 * written atomically). Metadata is exchanged as JSON text. */
#ifndef TESSERA_REGISTRY_H
#define TESSERA_REGISTRY_H
#include <stddef.h>
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tsr_registry tsr_registry_t;

#define TSR_REGISTRY_ID_MAX 96 /* bytes, with the terminating NUL */

/* dir need not exist yet: it is made when the first model is added. */
TSR_API int tsr_registry_create(const char *dir, tsr_registry_t **out);
TSR_API void tsr_registry_destroy(tsr_registry_t *r); /* accepts NULL */
TSR_API const char *tsr_registry_dir(const tsr_registry_t *r);
/* The most parameters a model file added to the registry may declare
 * (0: TSR_MODEL_MAX_PARAMS_DEFAULT; see tsr_model_load_max). */
TSR_API void tsr_registry_set_max_params(tsr_registry_t *r, size_t max_params);

/* 1 if id has the registry's id syntax (it may still not exist). */
TSR_API int tsr_registry_id_valid(const char *id);
/* 1 if a model with this id is registered, else 0. */
TSR_API int tsr_registry_exists(tsr_registry_t *r, const char *id);

/* Registers a copy of the model file at path (checked by loading it) under
 * name (NULL: the file's name without extension; other characters become
 * '-'). The new id goes to id[idlen]. */
TSR_API int tsr_registry_add(tsr_registry_t *r, const char *path, const char *name, char *id, size_t idlen);
/* Like tsr_registry_add, but moves path (which must be on the registry's
 * file system, e.g. from tsr_registry_tmpfile) instead of copying it. path
 * is removed on failure too. source is recorded as the model's origin. */
TSR_API int tsr_registry_adopt(tsr_registry_t *r, const char *path, const char *name, const char *source, char *id,
                               size_t idlen);
/* Makes the directory if needed and opens a new empty temporary file in it
 * for an upload; returns the fd (or a negative code) and its path in buf. */
TSR_API int tsr_registry_tmpfile(tsr_registry_t *r, char *buf, size_t len);

/* A JSON array of metadata objects, oldest first, filtered by exact name,
 * a tag and a status (each NULL: any). malloc'd; NULL on error. */
TSR_API char *tsr_registry_list_json(tsr_registry_t *r, const char *name, const char *tag, const char *status);
/* One model's metadata as a JSON object; malloc'd; NULL if absent. */
TSR_API char *tsr_registry_get_json(tsr_registry_t *r, const char *id);
/* Applies a JSON object with any of "description" (string), "tags" (array
 * of strings, replaces), "status" (registered|staging|production|archived)
 * and "metadata" (object merged in; null deletes a key). TSR_EINVAL names
 * what is wrong with the patch; TSR_EDATA if id is not registered. */
TSR_API int tsr_registry_update(tsr_registry_t *r, const char *id, const char *patch, size_t len);
/* Unregisters id and removes its files. TSR_EDATA if absent. */
TSR_API int tsr_registry_remove(tsr_registry_t *r, const char *id);
/* The model file of id. TSR_EDATA if absent. */
TSR_API int tsr_registry_model_path(tsr_registry_t *r, const char *id, char *buf, size_t len);
/* The newest model with the given status (NULL: any); TSR_EDATA if none. */
TSR_API int tsr_registry_latest(tsr_registry_t *r, const char *status, char *id, size_t idlen);

#ifdef __cplusplus
}
#endif
#endif
