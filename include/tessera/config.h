/* SPDX-License-Identifier: BSD-3-Clause */
/* INI configuration with a fixed schema: sections data, model, train, optim,
 * runtime. Unknown sections or keys are errors that name the file, line and
 * the nearest valid key; values are checked against their type. */
#ifndef TESSERA_CONFIG_H
#define TESSERA_CONFIG_H
#include <stddef.h>
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tsr_config tsr_config_t;

/* An empty configuration: every key has its default. */
TSR_API int tsr_config_create(tsr_config_t **out);
/* Reads an INI file over the current values. A key set twice in the file,
 * an empty item in a list ("16,,16") or a file that is not a regular file
 * is an error naming the file and line(s); a missing file is TSR_EINVAL. */
TSR_API int tsr_config_load(tsr_config_t *cfg, const char *path);
/* Applies one "section.key=value" override (from --set). */
TSR_API int tsr_config_set(tsr_config_t *cfg, const char *assignment);
TSR_API void tsr_config_destroy(tsr_config_t *cfg);

/* Typed getters. The key must exist in the schema; values were checked when
 * set, so these only fail on a schema mistake (TSR_EINTERNAL). */
TSR_API const char *tsr_config_get(const tsr_config_t *cfg, const char *section, const char *key);
TSR_API long tsr_config_get_long(const tsr_config_t *cfg, const char *section, const char *key);
TSR_API double tsr_config_get_double(const tsr_config_t *cfg, const char *section, const char *key);
TSR_API int tsr_config_get_bool(const tsr_config_t *cfg, const char *section, const char *key);
/* Comma-separated positive integers; returns the count, up to max. */
TSR_API int tsr_config_get_ints(const tsr_config_t *cfg, const char *section, const char *key, long *vals, int max);
/* Where a value came from ("examples/digits.ini:7", "--set", "default"). */
TSR_API const char *tsr_config_origin(const tsr_config_t *cfg, const char *section, const char *key);
/* The keys of section (or only key, if not NULL) whose value the user set
 * (a file or --set), as "section.key, ..." into buf; returns how many. */
TSR_API int tsr_config_changed(const tsr_config_t *cfg, const char *section, const char *key, char *buf, size_t len);
/* The directory of the last loaded file ("." if none), for relative paths. */
TSR_API const char *tsr_config_dir(const tsr_config_t *cfg);
/* The last loaded file's path as given ("" if none). */
TSR_API const char *tsr_config_file(const tsr_config_t *cfg);
/* The effective configuration as INI text (malloc'd; caller frees). */
TSR_API char *tsr_config_dump(const tsr_config_t *cfg);

#ifdef __cplusplus
}
#endif
#endif
