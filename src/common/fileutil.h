/* SPDX-License-Identifier: BSD-3-Clause */
/* Files tessera reads and writes. Writers: whole or not at all (a temporary
 * name beside the target, fsync, rename, fsync of the directory), never
 * over something that is not a regular file, never over one of the
 * command's inputs. Readers: only regular files, checked before any open. */
#ifndef TSR_COMMON_FILEUTIL_H
#define TSR_COMMON_FILEUTIL_H
#include <stddef.h>
#include <sys/types.h>

/* "a FIFO", "a directory", "a character device", ... for messages. */
const char *tsr_file_kind(mode_t mode);

/* The path a writer replaces: path with the symbolic links of its last
 * component followed (model.h5 -> /scratch/m.h5 gives /scratch/m.h5), so a
 * link keeps pointing at the new file and is itself never replaced (as
 * root, renaming over /dev/stdout would replace the system's link). */
int tsr_file_resolve(const char *path, char *buf, size_t len);

/* An output about to be written: TSR_EINVAL, with one message naming both
 * files, when path exists and is not a regular file (a FIFO, device node,
 * socket or directory would be replaced by a regular file), or when it is
 * the same file as one of the n inputs: same device and inode (through
 * symbolic and hard links), or for an output that does not exist yet, the
 * same path once links and ".." are resolved. NULL or "" inputs are skipped.
 * Every writer checks this at commit; commands check it up front too, with
 * their inputs, before any work. */
int tsr_file_check_output(const char *path, const char *const *inputs, int n);

/* An input about to be read: TSR_EDATA unless path exists and is a regular
 * file, decided by stat before anything opens it (opening a FIFO blocks
 * until a writer comes, /dev/zero never ends, a directory holds no data).
 * expected says what the file should be ("an HDF5 dataset with /X and /y")
 * for the message. A path that cannot be examined (permissions) is TSR_EIO. */
int tsr_file_check_input(const char *path, const char *expected);

/* "dir/.name.tmp.<pid>" beside the file path resolves to. */
int tsr_file_tmpname(const char *path, char *buf, size_t len);
/* The temporary for path, created empty and new (anything already at that
 * name, such as a planted link, is removed first; O_EXCL | O_NOFOLLOW):
 * an open descriptor, or a negative TSR_E* code. */
int tsr_file_create_tmp(const char *path, char *tmp, size_t len);
/* fsyncs tmp, renames it to the file path resolves to (refused, as
 * tsr_file_check_output, if that is not a regular file), fsyncs the
 * directory. On failure tmp is removed and path is left as it was. */
int tsr_file_commit(const char *tmp, const char *path);
/* Writes len bytes to path whole or not at all (temporary name, write,
 * fsync, rename, fsync of the directory). */
int tsr_file_write_atomic(const char *path, const void *buf, size_t len);
/* The same with the bytes of the file from. */
int tsr_file_copy_atomic(const char *from, const char *path);
/* All len bytes to fd (retrying short writes and EINTR). */
int tsr_file_write_all(int fd, const void *buf, size_t len);
/* The bytes of the file from, appended to fd. */
int tsr_file_copy_to_fd(const char *from, int to_fd);
/* Creates dir and any missing parents (mode 0755); existing ones are fine. */
int tsr_mkdir_p(const char *dir);
/* Removes tmp if it exists (for failure paths). */
void tsr_file_discard(const char *tmp);
/* Joins dir and a relative path ("a/b" + "c" -> "a/b/c"); absolute paths
 * are copied unchanged. */
int tsr_path_join(const char *dir, const char *rel, char *buf, size_t len);

#endif
