/* Writing files whole or not at all: write to a temporary name beside the
 * target, fsync, rename, fsync the directory. */
#ifndef TSR_COMMON_FILEUTIL_H
#define TSR_COMMON_FILEUTIL_H
#include <stddef.h>

/* "dir/.name.tmp.<pid>" for path. */
int tsr_file_tmpname(const char *path, char *buf, size_t len);
/* fsyncs tmp, renames it to path, fsyncs path's directory. On failure tmp
 * is removed and path is left as it was. */
int tsr_file_commit(const char *tmp, const char *path);
/* Writes len bytes to path whole or not at all (temporary name, write,
 * fsync, rename, fsync of the directory). */
int tsr_file_write_atomic(const char *path, const void *buf, size_t len);
/* Creates dir and any missing parents (mode 0755); existing ones are fine. */
int tsr_mkdir_p(const char *dir);
/* Removes tmp if it exists (for failure paths). */
void tsr_file_discard(const char *tmp);
/* Joins dir and a relative path ("a/b" + "c" -> "a/b/c"); absolute paths
 * are copied unchanged. */
int tsr_path_join(const char *dir, const char *rel, char *buf, size_t len);

#endif
