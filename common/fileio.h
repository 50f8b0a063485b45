/* fileio.h - small synchronous file helpers for start-up, recovery and rare
 * metadata work (never the data path, which goes through common/ring.h).
 *
 * Every function returns SL_OK or an error from common/error.h; errno is
 * read here and nowhere else for these calls. EINTR is retried.
 */
#ifndef SL_FILEIO_H
#define SL_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Reads up to `len` bytes at `off`; *got < len only at end of file. */
int sl_pread_full(int fd, void *buf, size_t len, uint64_t off, size_t *got);
/* Writes all `len` bytes at `off`. */
int sl_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
/* fsync(2) of an open file or directory. */
int sl_fsync_fd(int fd);
/* Opens the directory `path` and fsyncs it (after create/rename/unlink). */
int sl_fsync_dir(const char *path);
/* mkdir -p, fsyncing the parent of every directory it creates, so that the
 * new directory entries are durable. Errors: SL_EINVAL (path too long). */
int sl_mkdir_p(const char *path);

#endif
