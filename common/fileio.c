/* fileio.c - pread/pwrite loops, fsync of files and directories, mkdir -p. */
#include "common/fileio.h"

#include "common/error.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

int sl_pread_full(int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
    size_t n = 0;
    while (n < len) {
        ssize_t r = pread(fd, (uint8_t *)buf + n, len - n, (off_t)(off + n));
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return sl_err_from_errno(errno);
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
    }
    *got = n;
    return SL_OK;
}

int sl_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
    size_t n = 0;
    while (n < len) {
        ssize_t r = pwrite(fd, (const uint8_t *)buf + n, len - n, (off_t)(off + n));
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return sl_err_from_errno(errno);
        }
        n += (size_t)r;
    }
    return SL_OK;
}

int sl_fsync_fd(int fd)
{
    return fsync(fd) == 0 ? SL_OK : sl_err_from_errno(errno);
}

int sl_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return sl_err_from_errno(errno);
    }
    int rc = sl_fsync_fd(fd);
    close(fd);
    return rc;
}

int sl_syncfs_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return sl_err_from_errno(errno);
    }
    int rc = syncfs(fd) == 0 ? SL_OK : sl_err_from_errno(errno);
    close(fd);
    return rc;
}

/* fsyncs the directory holding `path` (modified in place, restored). */
static int fsync_parent(char *path)
{
    char *slash = strrchr(path, '/');
    if (slash == NULL) {
        return sl_fsync_dir(".");
    }
    if (slash == path) {
        return sl_fsync_dir("/");
    }
    *slash = '\0';
    int rc = sl_fsync_dir(path);
    *slash = '/';
    return rc;
}

int sl_mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf)) {
        return SL_EINVAL;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') {
            continue;
        }
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) == 0) {
            int rc = fsync_parent(buf);
            if (rc != SL_OK) {
                return rc;
            }
        } else if (errno != EEXIST) {
            return sl_err_from_errno(errno);
        }
        buf[i] = c;
    }
    return SL_OK;
}

void sl_nofile_why(char *why, size_t len)
{
    struct rlimit rl;
    unsigned long long limit = 0;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        limit = rl.rlim_cur == RLIM_INFINITY ? ULLONG_MAX : (unsigned long long)rl.rlim_cur;
    }
    unsigned long long open_now = limit;
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        open_now = 0;
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            open_now += e->d_name[0] != '.';
        }
        closedir(d);
        open_now -= open_now > 0; /* the directory's own */
    }
    snprintf(why, len,
             "too many open files (%llu open, limit %llu): raise LimitNOFILE or lower "
             "open_files_max",
             open_now, limit);
}

/* ---- fault injection ---------------------------------------------------- */

static struct {
    struct sl_file_faults plan;
    int armed;
    uint64_t seen;
    uint64_t injected;
} faults;

void sl_file_faults_arm(const struct sl_file_faults *f)
{
    faults.plan = *f;
    faults.armed = 1;
    faults.seen = 0;
    faults.injected = 0;
}

void sl_file_faults_disarm(void)
{
    faults.armed = 0;
}

void sl_file_faults_counts(uint64_t *seen, uint64_t *injected)
{
    *seen = faults.seen;
    *injected = faults.injected;
}

/* Returns the errno to fail this call with, or 0. */
static int fault_check(int op)
{
    if (!faults.armed || faults.plan.op != op) {
        return 0;
    }
    uint64_t n = ++faults.seen;
    if (n == faults.plan.nth || (faults.plan.persistent && n > faults.plan.nth)) {
        faults.injected++;
        return faults.plan.err;
    }
    return 0;
}

int sl_openat(int dirfd, const char *name, int flags, unsigned mode)
{
    int e = (flags & O_CREAT) != 0 ? fault_check(SL_FILE_FAULT_CREATE) : 0;
    if (e != 0) {
        errno = e;
        return -1;
    }
    return openat(dirfd, name, flags, (mode_t)mode);
}

int sl_renameat(int olddirfd, const char *oldname, int newdirfd, const char *newname)
{
    int e = fault_check(SL_FILE_FAULT_RENAME);
    if (e != 0) {
        errno = e;
        return -1;
    }
    return renameat(olddirfd, oldname, newdirfd, newname);
}

int sl_ftruncate(int fd, uint64_t len)
{
    int e = fault_check(SL_FILE_FAULT_FTRUNCATE);
    if (e != 0) {
        errno = e;
        return -1;
    }
    return ftruncate(fd, (off_t)len);
}

int sl_unlinkat(int dirfd, const char *name, int flags)
{
    int e = fault_check(SL_FILE_FAULT_UNLINK);
    if (e != 0) {
        errno = e;
        return -1;
    }
    return unlinkat(dirfd, name, flags);
}

int sl_file_replace(const char *dir, const char *tmp, const char *path, const void *const *parts,
                    const size_t *lens, uint32_t n, const char **step)
{
    *step = "create the directory of";
    int rc = sl_mkdir_p(dir);
    if (rc != SL_OK) {
        return rc;
    }
    *step = "create";
    int fd = sl_openat(AT_FDCWD, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return errno == ENOSPC ? SL_ENOSPC : SL_EIO;
    }
    *step = "write";
    uint64_t off = 0;
    for (uint32_t i = 0; i < n && rc == SL_OK; i++) {
        rc = sl_pwrite_full(fd, parts[i], lens[i], off);
        off += lens[i];
    }
    if (rc == SL_OK) {
        *step = "fsync";
        rc = sl_fsync_fd(fd);
    }
    close(fd);
    if (rc == SL_OK) {
        *step = "rename";
        rc = sl_renameat(AT_FDCWD, tmp, AT_FDCWD, path) == 0 ? SL_OK : SL_EIO;
    }
    if (rc == SL_OK) {
        *step = "fsync the directory of";
        rc = sl_fsync_dir(dir);
    }
    return rc;
}
