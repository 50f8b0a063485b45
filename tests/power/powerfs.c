/* powerfs.c - an in-memory FUSE filesystem that keeps only what was synced, and can lose
 * power (tests/power/, issue #6 suite 2).
 *
 * Every file has `current` content (what reads see; write and truncate change it) and
 * `durable` content (what a power cut leaves): fsync/fdatasync of a file copies its current
 * content and size to durable. Every directory has current entries (create, mkdir, unlink,
 * rmdir, rename change them) and durable entries: fsync of a directory (fsyncdir) copies its
 * current entries to durable. A power cut replaces every current state by the durable one.
 *
 * Cutting power: write "cut" to the control file /.powercut at the root (synchronous: the
 * cut is done when write returns), or "tear" to also keep a random prefix (0..all bytes) of
 * the last unsynced write as if it had partly reached the disk (a torn write). SIGUSR1 also
 * cuts (applied before the next request). The control file is virtual: not listed, size 0.
 *
 * Run single-threaded in the foreground: powerfs -f -s [-o ...] MOUNTPOINT
 * The kernel caches nothing (entry/attr/negative timeouts 0, no kernel_cache), so after a
 * cut it sees the durable state at once. Nodes are never freed (a test-sized filesystem).
 */
#define FUSE_USE_VERSION 35
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <fuse.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CTL_NAME "/.powercut"

struct node;

struct dent {
    char *name;
    struct node *node;
};

struct dirents {
    struct dent *v;
    size_t n, cap;
};

struct node {
    int is_dir;
    mode_t mode;
    uint64_t ino;
    struct timespec mtime;
    /* files */
    unsigned char *cur;
    size_t cur_len, cur_cap;
    unsigned char *dur;
    size_t dur_len;
    size_t dirty_lo, dirty_hi; /* current bytes changed since the last fsync */
    int size_dirty;
    /* directories */
    struct dirents cur_ents, dur_ents;
    struct node *all_next; /* every node ever made */
};

static struct node *root;
static struct node *all_nodes;
static uint64_t next_ino = 1;
static volatile sig_atomic_t sig_cut;
static unsigned long cuts;

/* The last write not yet covered by an fsync of its file (for a torn write at the cut). */
static struct {
    struct node *node;
    off_t off;
    unsigned char *data;
    size_t len;
} last_write;

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n == 0 ? 1 : n);
    if (q == NULL) {
        fprintf(stderr, "powerfs: out of memory\n");
        abort();
    }
    return q;
}

static struct node *node_new(int is_dir, mode_t mode)
{
    struct node *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        abort();
    }
    n->is_dir = is_dir;
    n->mode = mode;
    n->ino = next_ino++;
    clock_gettime(CLOCK_REALTIME, &n->mtime);
    n->all_next = all_nodes;
    all_nodes = n;
    return n;
}

static void ents_copy(struct dirents *dst, const struct dirents *src)
{
    for (size_t i = 0; i < dst->n; i++) {
        free(dst->v[i].name);
    }
    dst->n = 0;
    if (dst->cap < src->n) {
        dst->cap = src->n;
        dst->v = xrealloc(dst->v, dst->cap * sizeof(*dst->v));
    }
    for (size_t i = 0; i < src->n; i++) {
        dst->v[i].name = strdup(src->v[i].name);
        dst->v[i].node = src->v[i].node;
    }
    dst->n = src->n;
}

static struct dent *ents_find(struct dirents *e, const char *name, size_t len)
{
    for (size_t i = 0; i < e->n; i++) {
        if (strlen(e->v[i].name) == len && memcmp(e->v[i].name, name, len) == 0) {
            return &e->v[i];
        }
    }
    return NULL;
}

static void ents_add(struct dirents *e, const char *name, struct node *n)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 8;
        e->v = xrealloc(e->v, e->cap * sizeof(*e->v));
    }
    e->v[e->n].name = strdup(name);
    e->v[e->n].node = n;
    e->n++;
}

static void ents_del(struct dirents *e, struct dent *d)
{
    free(d->name);
    *d = e->v[e->n - 1];
    e->n--;
}

/* ---- power ---------------------------------------------------------------------------- */

static void file_sync(struct node *n)
{
    if (n->dur_len < n->cur_len) {
        n->dur = xrealloc(n->dur, n->cur_len);
        memset(n->dur + n->dur_len, 0, n->cur_len - n->dur_len);
    }
    n->dur_len = n->cur_len;
    size_t hi = n->dirty_hi < n->cur_len ? n->dirty_hi : n->cur_len;
    if (n->dirty_lo < hi) {
        memcpy(n->dur + n->dirty_lo, n->cur + n->dirty_lo, hi - n->dirty_lo);
    }
    n->dirty_lo = SIZE_MAX;
    n->dirty_hi = 0;
    n->size_dirty = 0;
    if (last_write.node == n) {
        free(last_write.data);
        memset(&last_write, 0, sizeof(last_write));
    }
}

static void power_cut(int tear)
{
    if (tear && last_write.node != NULL && last_write.len > 0) {
        struct node *n = last_write.node;
        size_t keep = (size_t)rand() % (last_write.len + 1);
        size_t end = (size_t)last_write.off + keep;
        if (keep > 0) {
            if (end > n->dur_len) {
                n->dur = xrealloc(n->dur, end);
                memset(n->dur + n->dur_len, 0, end - n->dur_len);
                n->dur_len = end;
            }
            memcpy(n->dur + last_write.off, last_write.data, keep);
        }
        fprintf(stderr, "powerfs: torn write: kept %zu of %zu bytes at %lld (ino %llu)\n", keep,
                last_write.len, (long long)last_write.off, (unsigned long long)n->ino);
    }
    free(last_write.data);
    memset(&last_write, 0, sizeof(last_write));
    for (struct node *n = all_nodes; n != NULL; n = n->all_next) {
        if (n->is_dir) {
            ents_copy(&n->cur_ents, &n->dur_ents);
        } else {
            if (n->cur_cap < n->dur_len) {
                n->cur_cap = n->dur_len;
                n->cur = xrealloc(n->cur, n->cur_cap);
            }
            if (n->dur_len > 0) {
                memcpy(n->cur, n->dur, n->dur_len);
            }
            n->cur_len = n->dur_len;
            n->dirty_lo = SIZE_MAX;
            n->dirty_hi = 0;
            n->size_dirty = 0;
        }
    }
    cuts++;
    fprintf(stderr, "powerfs: power cut %lu%s\n", cuts, tear ? " (torn)" : "");
}

static void on_sigusr1(int sig)
{
    (void)sig;
    sig_cut = 1;
}

static void pending_cut(void)
{
    if (sig_cut) {
        sig_cut = 0;
        power_cut(0);
    }
}

/* ---- paths ---------------------------------------------------------------------------- */

static int is_ctl(const char *path)
{
    return path != NULL && strcmp(path, CTL_NAME) == 0;
}

/* The control file's handle (no node lives at address 1). */
#define CTL_FH 1u

static int is_ctl_fi(const char *path, const struct fuse_file_info *fi)
{
    return fi != NULL ? fi->fh == CTL_FH : is_ctl(path);
}

static struct node *lookup(const char *path)
{
    struct node *n = root;
    const char *p = path;
    while (*p != '\0') {
        while (*p == '/') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        const char *e = strchr(p, '/');
        size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
        if (!n->is_dir) {
            return NULL;
        }
        struct dent *d = ents_find(&n->cur_ents, p, len);
        if (d == NULL) {
            return NULL;
        }
        n = d->node;
        p += len;
    }
    return n;
}

/* Splits path into its parent directory node and last name. */
static int parent_of(const char *path, struct node **dir, const char **name)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        return -EINVAL;
    }
    char *pp = strndup(path, (size_t)(slash - path));
    if (pp == NULL) {
        return -ENOMEM;
    }
    struct node *d = lookup(pp);
    free(pp);
    if (d == NULL) {
        return -ENOENT;
    }
    if (!d->is_dir) {
        return -ENOTDIR;
    }
    *dir = d;
    *name = slash + 1;
    return strlen(*name) > 255 ? -ENAMETOOLONG : 0;
}

static struct node *node_of(const char *path, struct fuse_file_info *fi)
{
    if (fi != NULL && fi->fh != 0 && fi->fh != CTL_FH) {
        return (struct node *)(uintptr_t)fi->fh;
    }
    return path != NULL ? lookup(path) : NULL;
}

/* ---- operations ----------------------------------------------------------------------- */

static void *pf_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    cfg->kernel_cache = 0;
    cfg->hard_remove = 1;
    cfg->nullpath_ok = 1;
    cfg->use_ino = 1;
    return NULL;
}

static int pf_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    pending_cut();
    memset(st, 0, sizeof(*st));
    if (is_ctl(path) || (fi != NULL && fi->fh == CTL_FH)) {
        st->st_mode = S_IFREG | 0666;
        st->st_nlink = 1;
        st->st_ino = UINT32_MAX;
        return 0;
    }
    struct node *n = node_of(path, fi);
    if (n == NULL) {
        return -ENOENT;
    }
    st->st_ino = n->ino;
    st->st_mode = n->mode;
    st->st_nlink = n->is_dir ? 2 : 1;
    st->st_uid = getuid();
    st->st_gid = getgid();
    st->st_size = n->is_dir ? 4096 : (off_t)n->cur_len;
    st->st_blksize = 4096;
    st->st_blocks = (st->st_size + 511) / 512;
    st->st_mtim = n->mtime;
    st->st_ctim = n->mtime;
    st->st_atim = n->mtime;
    return 0;
}

static int pf_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    (void)off;
    (void)flags;
    pending_cut();
    struct node *n = node_of(path, fi);
    if (n == NULL) {
        return -ENOENT;
    }
    if (!n->is_dir) {
        return -ENOTDIR;
    }
    fill(buf, ".", NULL, 0, 0);
    fill(buf, "..", NULL, 0, 0);
    for (size_t i = 0; i < n->cur_ents.n; i++) {
        struct stat st;
        memset(&st, 0, sizeof(st));
        st.st_ino = n->cur_ents.v[i].node->ino;
        st.st_mode = n->cur_ents.v[i].node->mode;
        if (fill(buf, n->cur_ents.v[i].name, &st, 0, 0) != 0) {
            break;
        }
    }
    return 0;
}

static int pf_opendir(const char *path, struct fuse_file_info *fi)
{
    pending_cut();
    struct node *n = lookup(path);
    if (n == NULL) {
        return -ENOENT;
    }
    if (!n->is_dir) {
        return -ENOTDIR;
    }
    fi->fh = (uint64_t)(uintptr_t)n;
    return 0;
}

static int pf_releasedir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    (void)fi;
    return 0;
}

static int pf_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)datasync;
    pending_cut();
    struct node *n = node_of(path, fi);
    if (n == NULL) {
        return -ENOENT;
    }
    if (n->is_dir) {
        ents_copy(&n->dur_ents, &n->cur_ents);
    }
    return 0;
}

static int make_node(const char *path, int is_dir, mode_t mode, struct node **out)
{
    pending_cut();
    if (is_ctl(path)) {
        return -EEXIST;
    }
    struct node *dir;
    const char *name;
    int rc = parent_of(path, &dir, &name);
    if (rc != 0) {
        return rc;
    }
    if (ents_find(&dir->cur_ents, name, strlen(name)) != NULL) {
        return -EEXIST;
    }
    struct node *n = node_new(is_dir, (is_dir ? S_IFDIR : S_IFREG) | (mode & 07777));
    ents_add(&dir->cur_ents, name, n);
    clock_gettime(CLOCK_REALTIME, &dir->mtime);
    *out = n;
    return 0;
}

static int pf_mkdir(const char *path, mode_t mode)
{
    struct node *n;
    return make_node(path, 1, mode, &n);
}

static int pf_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    struct node *n;
    int rc = make_node(path, 0, mode, &n);
    if (rc == 0) {
        fi->fh = (uint64_t)(uintptr_t)n;
    }
    return rc;
}

static int pf_open(const char *path, struct fuse_file_info *fi)
{
    pending_cut();
    if (is_ctl(path)) {
        fi->fh = CTL_FH;
        fi->direct_io = 1;
        return 0;
    }
    struct node *n = lookup(path);
    if (n == NULL) {
        return -ENOENT;
    }
    if (n->is_dir) {
        return -EISDIR;
    }
    fi->fh = (uint64_t)(uintptr_t)n;
    return 0;
}

static int pf_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    (void)fi;
    return 0;
}

static int pf_flush(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    (void)fi;
    return 0; /* close() is not a sync */
}

static int pf_read(const char *path, char *buf, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
    pending_cut();
    if (is_ctl_fi(path, fi)) {
        return 0;
    }
    struct node *n = node_of(path, fi);
    if (n == NULL) {
        return -ENOENT;
    }
    if (n->is_dir) {
        return -EISDIR;
    }
    if ((size_t)off >= n->cur_len) {
        return 0;
    }
    size_t len = n->cur_len - (size_t)off;
    if (len > size) {
        len = size;
    }
    memcpy(buf, n->cur + off, len);
    return (int)len;
}

static void set_len(struct node *n, size_t len)
{
    if (len > n->cur_cap) {
        size_t cap = n->cur_cap ? n->cur_cap : 4096;
        while (cap < len) {
            cap *= 2;
        }
        n->cur = xrealloc(n->cur, cap);
        n->cur_cap = cap;
    }
    if (len > n->cur_len) {
        memset(n->cur + n->cur_len, 0, len - n->cur_len);
        if (n->cur_len < n->dirty_lo) {
            n->dirty_lo = n->cur_len;
        }
        if (len > n->dirty_hi) {
            n->dirty_hi = len;
        }
    }
    n->cur_len = len;
    n->size_dirty = 1;
}

static int pf_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    pending_cut();
    if (is_ctl_fi(path, fi)) {
        power_cut(size >= 4 && memcmp(buf, "tear", 4) == 0);
        return (int)size;
    }
    struct node *n = node_of(path, fi);
    if (n == NULL) {
        return -ENOENT;
    }
    if (n->is_dir) {
        return -EISDIR;
    }
    size_t end = (size_t)off + size;
    if (end > n->cur_len) {
        set_len(n, end);
    }
    memcpy(n->cur + off, buf, size);
    if ((size_t)off < n->dirty_lo) {
        n->dirty_lo = (size_t)off;
    }
    if (end > n->dirty_hi) {
        n->dirty_hi = end;
    }
    clock_gettime(CLOCK_REALTIME, &n->mtime);
    free(last_write.data);
    last_write.node = n;
    last_write.off = off;
    last_write.len = size;
    last_write.data = xrealloc(NULL, size);
    memcpy(last_write.data, buf, size);
    return (int)size;
}

static int pf_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    pending_cut();
    if (is_ctl_fi(path, fi)) {
        return 0;
    }
    struct node *n = node_of(path, fi);
    if (n == NULL) {
        return -ENOENT;
    }
    if (n->is_dir) {
        return -EISDIR;
    }
    set_len(n, (size_t)size);
    clock_gettime(CLOCK_REALTIME, &n->mtime);
    return 0;
}

static int pf_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)datasync; /* the size is data too */
    pending_cut();
    if (is_ctl_fi(path, fi)) {
        return 0;
    }
    struct node *n = node_of(path, fi);
    if (n == NULL) {
        return -ENOENT;
    }
    if (n->is_dir) {
        ents_copy(&n->dur_ents, &n->cur_ents);
    } else {
        file_sync(n);
    }
    return 0;
}

static int pf_unlink(const char *path)
{
    pending_cut();
    if (is_ctl(path)) {
        return -EPERM;
    }
    struct node *dir;
    const char *name;
    int rc = parent_of(path, &dir, &name);
    if (rc != 0) {
        return rc;
    }
    struct dent *d = ents_find(&dir->cur_ents, name, strlen(name));
    if (d == NULL) {
        return -ENOENT;
    }
    if (d->node->is_dir) {
        return -EISDIR;
    }
    ents_del(&dir->cur_ents, d);
    return 0;
}

static int pf_rmdir(const char *path)
{
    pending_cut();
    struct node *dir;
    const char *name;
    int rc = parent_of(path, &dir, &name);
    if (rc != 0) {
        return rc;
    }
    struct dent *d = ents_find(&dir->cur_ents, name, strlen(name));
    if (d == NULL) {
        return -ENOENT;
    }
    if (!d->node->is_dir) {
        return -ENOTDIR;
    }
    if (d->node->cur_ents.n != 0) {
        return -ENOTEMPTY;
    }
    ents_del(&dir->cur_ents, d);
    return 0;
}

static int pf_rename(const char *from, const char *to, unsigned int flags)
{
    pending_cut();
    if (is_ctl(from) || is_ctl(to)) {
        return -EPERM;
    }
    if (flags & ~(unsigned)RENAME_NOREPLACE) {
        return -EINVAL;
    }
    struct node *fd, *td;
    const char *fname, *tname;
    int rc = parent_of(from, &fd, &fname);
    if (rc == 0) {
        rc = parent_of(to, &td, &tname);
    }
    if (rc != 0) {
        return rc;
    }
    struct dent *src = ents_find(&fd->cur_ents, fname, strlen(fname));
    if (src == NULL) {
        return -ENOENT;
    }
    struct node *n = src->node;
    struct dent *dst = ents_find(&td->cur_ents, tname, strlen(tname));
    if (dst != NULL) {
        if (dst->node == n) {
            return 0;
        }
        if (flags & RENAME_NOREPLACE) {
            return -EEXIST;
        }
        if (dst->node->is_dir && !n->is_dir) {
            return -EISDIR;
        }
        if (!dst->node->is_dir && n->is_dir) {
            return -ENOTDIR;
        }
        if (dst->node->is_dir && dst->node->cur_ents.n != 0) {
            return -ENOTEMPTY;
        }
        dst->node = n;
        src = ents_find(&fd->cur_ents, fname, strlen(fname));
        ents_del(&fd->cur_ents, src);
    } else {
        ents_del(&fd->cur_ents, src);
        ents_add(&td->cur_ents, tname, n);
    }
    return 0;
}

static int pf_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    pending_cut();
    if (is_ctl_fi(path, fi)) {
        return 0;
    }
    struct node *n = node_of(path, fi);
    if (n == NULL) {
        return -ENOENT;
    }
    n->mode = (n->mode & S_IFMT) | (mode & 07777);
    return 0;
}

static int pf_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    (void)tv;
    pending_cut();
    return is_ctl_fi(path, fi) || node_of(path, fi) != NULL ? 0 : -ENOENT;
}

static int pf_statfs(const char *path, struct statvfs *st)
{
    (void)path;
    memset(st, 0, sizeof(*st));
    st->f_bsize = 4096;
    st->f_frsize = 4096;
    st->f_blocks = 1u << 20; /* 4 GiB */
    st->f_bfree = 1u << 20;
    st->f_bavail = 1u << 20;
    st->f_files = 1u << 20;
    st->f_ffree = 1u << 20;
    st->f_namemax = 255;
    return 0;
}

static int pf_fallocate(const char *path, int mode, off_t off, off_t len,
                        struct fuse_file_info *fi)
{
    pending_cut();
    if (mode != 0) {
        return -EOPNOTSUPP;
    }
    struct node *n = node_of(path, fi);
    if (n == NULL) {
        return -ENOENT;
    }
    if ((size_t)(off + len) > n->cur_len) {
        set_len(n, (size_t)(off + len));
    }
    return 0;
}

static const struct fuse_operations ops = {
    .init = pf_init,
    .getattr = pf_getattr,
    .readdir = pf_readdir,
    .opendir = pf_opendir,
    .releasedir = pf_releasedir,
    .fsyncdir = pf_fsyncdir,
    .mkdir = pf_mkdir,
    .create = pf_create,
    .open = pf_open,
    .release = pf_release,
    .flush = pf_flush,
    .read = pf_read,
    .write = pf_write,
    .truncate = pf_truncate,
    .fsync = pf_fsync,
    .unlink = pf_unlink,
    .rmdir = pf_rmdir,
    .rename = pf_rename,
    .chmod = pf_chmod,
    .utimens = pf_utimens,
    .statfs = pf_statfs,
    .fallocate = pf_fallocate,
};

int main(int argc, char *argv[])
{
    root = node_new(1, S_IFDIR | 0755);
    const char *seed = getenv("POWERFS_SEED");
    srand(seed != NULL ? (unsigned)strtoul(seed, NULL, 10) : (unsigned)time(NULL));
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigusr1;
    sigaction(SIGUSR1, &sa, NULL);
    return fuse_main(argc, argv, &ops, NULL);
}
