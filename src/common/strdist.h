/* Levenshtein distance (case-insensitive), for "did you mean" suggestions
 * in the config and task-file parsers (internal). */
#ifndef TSR_COMMON_STRDIST_H
#define TSR_COMMON_STRDIST_H

/* 99 when either string is longer than 63 bytes. */
int tsr_edit_distance(const char *a, const char *b);

#endif
