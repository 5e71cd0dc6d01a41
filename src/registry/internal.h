/* Shared between the registry's files: the object and metadata helpers. */
#ifndef TSR_REGISTRY_INTERNAL_H
#define TSR_REGISTRY_INTERNAL_H
#include "tessera/model.h"
#include "tessera/registry.h"

#include <jansson.h>
#include <pthread.h>

struct tsr_registry {
    char *dir;
    pthread_mutex_t mu; /* one writer at a time within this process */
};

/* The statuses a model may have, NULL-terminated; the first is the default. */
extern const char *const tsr_registry_statuses[];

/* Metadata for a model file just registered as id (name, version). */
json_t *reg_meta_new(const char *id, const char *name, long version, const char *source, const char *model_file,
                     const tsr_model_t *m);
/* Applies a PATCH document to meta in place; TSR_EINVAL with a message. */
int reg_meta_patch(json_t *meta, const char *patch, size_t len);
/* Writes meta to path atomically. */
int reg_meta_write(const char *path, json_t *meta);

#endif
