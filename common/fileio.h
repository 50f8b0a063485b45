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
/* syncfs(2) of the file system holding `path`: every file's data and
 * metadata there durable, in one call. */
int sl_syncfs_path(const char *path);
/* mkdir -p, fsyncing the parent of every directory it creates, so that the
 * new directory entries are durable. Errors: SL_EINVAL (path too long). */
int sl_mkdir_p(const char *path);

/* Replaces the file `path` in directory `dir` durably with the `n` parts
 * of `parts`/`lens`, one after the other: `dir` made if missing, the bytes
 * written to `tmp` (mode 0600, same directory) and fsynced, renamed over
 * `path`, `dir` fsynced. A crash leaves the old file or the new one, never
 * a mix. On error *step names what failed ("create", "write", "fsync",
 * "rename", "create the directory of", "fsync the directory of"), for a
 * message "cannot <step> <path>". Errors: SL_ENOSPC, SL_EIO, SL_EINVAL. */
int sl_file_replace(const char *dir, const char *tmp, const char *path, const void *const *parts,
                    const size_t *lens, uint32_t n, const char **step);

/* What to say when descriptors run out (EMFILE, ENFILE: SL_ELIMIT from a
 * file call): writes "too many open files (N open, limit M): raise
 * LimitNOFILE or lower open_files_max" into `why` (len > 0). N is counted
 * in /proc/self/fd (M when even that cannot be opened: every descriptor is
 * taken), M is the soft RLIMIT_NOFILE. For error paths only (it reads a
 * directory); any thread. */
void sl_nofile_why(char *why, size_t len);

/* Fault injection for the synchronous file calls below (the ring has its
 * own, sl_ring_faults_arm, for reads, writes and fsyncs). Process-wide, for
 * tests; inert (one branch) unless armed. The nth call of the armed kind
 * (counted from arming, 1-based) fails with `err` without reaching the
 * kernel; with `persistent`, every later one too. */
enum sl_file_fault_op {
    SL_FILE_FAULT_CREATE = 1, /* sl_openat with O_CREAT */
    SL_FILE_FAULT_RENAME = 2,
    SL_FILE_FAULT_FTRUNCATE = 3,
    SL_FILE_FAULT_UNLINK = 4,
};
struct sl_file_faults {
    int op;
    uint64_t nth;
    int err;
    int persistent;
};
void sl_file_faults_arm(const struct sl_file_faults *f);
void sl_file_faults_disarm(void);
/* Calls of the armed kind seen, and failures injected, since arming. */
void sl_file_faults_counts(uint64_t *seen, uint64_t *injected);

/* The syscalls with the hook: same arguments and results as openat(2),
 * renameat(2), ftruncate(2), unlinkat(2) (-1 and errno on failure). */
int sl_openat(int dirfd, const char *name, int flags, unsigned mode);
int sl_renameat(int olddirfd, const char *oldname, int newdirfd, const char *newname);
int sl_ftruncate(int fd, uint64_t len);
int sl_unlinkat(int dirfd, const char *name, int flags);

#endif
