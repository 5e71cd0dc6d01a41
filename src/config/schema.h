/* SPDX-License-Identifier: BSD-3-Clause */
/* The configuration schema (internal to the config module and its tests). */
#ifndef TSR_CONFIG_SCHEMA_H
#define TSR_CONFIG_SCHEMA_H

typedef enum { TSR_T_STR, TSR_T_INT, TSR_T_DOUBLE, TSR_T_BOOL, TSR_T_ENUM, TSR_T_INTS } tsr_type_t;

typedef struct tsr_key {
    const char *section;
    const char *key;
    tsr_type_t type;
    const char *def;
    long min, max;              /* TSR_T_INT, TSR_T_INTS */
    const char *const *choices; /* TSR_T_ENUM */
    const char *help;
} tsr_key_t;

extern const tsr_key_t tsr_schema[];
const tsr_key_t *tsr_schema_find(const char *section, const char *key);
int tsr_schema_has_section(const char *section);

#endif
