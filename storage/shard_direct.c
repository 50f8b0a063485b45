/* shard_direct.c - io_mode = direct: the writing segment's .log written with
 * O_DIRECT from aligned staging buffers.
 *
 * Why. A buffered append copies every byte into the page cache and the
 * fdatasync then writes those pages back; an O_DIRECT write goes from the
 * staging buffer to the device and the fdatasync has only the device cache
 * (and, past the zeroed run-ahead, the file size) to commit. What it costs
 * is alignment: offset, length and memory of every write are multiples of
 * SL_DIO_ALIGN, while batches are packed back to back at any offset.
 *
 * How. A staging buffer (wbuf) in this mode is allocated aligned with
 * 2 * SL_DIO_ALIGN bytes of slack. Its batches start at `head` = pos %
 * SL_DIO_ALIGN bytes into it; at submit the head is filled with the bytes
 * the file holds in [pos - head, pos) - the block under the data end, kept
 * in s->dio_tail by the previous submit, or read back from the file after a
 * restart, an unpark, a rewind or a truncate - and the last block is padded
 * with zeros. So a write covers [pos - head, align_up(pos + len)): the block
 * under the data end is written again, with more data, by the next write.
 *
 * What must hold.
 *   - Two writes of one shard never overlap in flight: the next write
 *     rewrites the block under the end of the one before. So one data write
 *     is in flight per shard (only the FIFO's head is issued; the next is
 *     issued when it completes). Group commit is unchanged: the fdatasync of
 *     one write overlaps the next write.
 *   - The bytes past the data end in the last block are zeros, and the file
 *     may be up to a block longer than its data: seg->zero_end covers the
 *     padding, so the seal, a park and a close cut it as they cut the
 *     run-ahead, and recovery takes it for the clean end of the data (zeros
 *     after the last batch), exactly as the run-ahead's zeros.
 *   - dio_tail is the file's content of [dio_tail_off, end) of dio_tail_seg
 *     as staged, where end is that segment's staged data end; any change of
 *     the data end other than a submit (recovery, unpark, a rewind after a
 *     full disk, a truncate, a freed segment) invalidates it, and it is read
 *     back - with O_DIRECT, so no stale page can serve it - only while no
 *     write of that segment is in flight.
 *   - Reads, fdatasyncs, cuts and recovery use the buffered descriptor: an
 *     O_DIRECT write flushes and invalidates the cached pages of its range
 *     before and after it, and a reader reads only acknowledged bytes, whose
 *     blocks no write in flight changes below the visible end (docs/FORMAT.md
 *     "Direct I/O").
 *   - No per-record syscall or allocation: at most one block copied in and
 *     one out per write; the tail block is allocated once per unparked shard.
 */
#include "storage/shard_int.h"

#include "common/assert.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *shard_dio_alloc(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, SL_DIO_ALIGN, bytes + 2u * SL_DIO_ALIGN) != 0) {
        return NULL;
    }
    return p;
}

/* The message for a filesystem that refuses O_DIRECT (EINVAL at open). */
static void no_direct_why(char *why, size_t why_len, const char *dir)
{
    snprintf(why, why_len,
             "io_mode = direct: the filesystem of %s does not support O_DIRECT (tmpfs before "
             "Linux 6.6, some FUSE and network filesystems); set io_mode = buffered, or put the "
             "data directory on a filesystem that does (ext4, xfs, btrfs)",
             dir);
}

int shard_dio_open(struct sl_shard *s, struct segment *g)
{
    SL_ASSERT(shard_direct(s) && g->log_fd >= 0 && g->dio_fd < 0);
    char name[64];
    seg_name(name, sizeof(name), g->base_seq, "log");
    g->dio_fd = openat(s->dir_fd, name, O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (g->dio_fd >= 0) {
        return SL_OK;
    }
    int e = errno;
    int rc = sl_err_from_errno(e);
    if (e == EINVAL) {
        char why[320];
        no_direct_why(why, sizeof(why), s->dir);
        sl_error("storage", "%s", why);
        return SL_EUNSUPPORTED;
    }
    if (rc != SL_ELIMIT) {
        sl_error("storage", "%s: cannot open %s with O_DIRECT: %s", s->dir, name, strerror(e));
    }
    return rc;
}

void shard_dio_close(struct segment *g)
{
    if (g->dio_fd >= 0) {
        close(g->dio_fd);
        g->dio_fd = -1;
    }
    if (g->shard != NULL && g->shard->dio_tail_seg == g) {
        g->shard->dio_tail_seg = NULL;
    }
    if (g->shard != NULL && g->shard->rc_seg == g) {
        g->shard->rc_seg = NULL; /* (a freed segment's address may come back) */
    }
}

void shard_dio_free(struct sl_shard *s)
{
    free(s->dio_tail);
    s->dio_tail = NULL;
    s->dio_tail_seg = NULL;
    free(s->rc_buf);
    s->rc_buf = NULL;
    s->rc_seg = NULL;
}

/* ------------------------------------------------------------------ */
/* The recent-data cache                                               */

/* Adds w's batches (just staged, about to be written) to the cache: one copy
 * per write. A write that does not continue what the cache holds (a new
 * segment, a rewind after a full disk) starts it afresh. */
static void rc_put(struct sl_shard *s, struct wbuf *w)
{
    uint32_t cap = s->cfg.read_cache_bytes;
    if (cap == 0) {
        return;
    }
    if (s->rc_buf == NULL) {
        s->rc_buf = malloc(cap);
        if (s->rc_buf == NULL) {
            return; /* served from the file meanwhile; tried again at the next write */
        }
        s->rc_seg = NULL;
    }
    if (s->rc_seg != w->seg || s->rc_end != w->pos) {
        s->rc_seg = w->seg;
        s->rc_start = s->rc_end = w->pos;
    }
    const uint8_t *src = wbuf_bytes(w);
    uint32_t len = w->len;
    if (len > cap) {
        src += len - cap; /* only the newest cap bytes stay */
        s->rc_end += len - cap;
        s->rc_start = s->rc_end;
        len = cap;
    }
    uint32_t at = (uint32_t)(s->rc_end % cap);
    uint32_t first = cap - at < len ? cap - at : len;
    memcpy(s->rc_buf + at, src, first);
    memcpy(s->rc_buf, src + first, len - first);
    s->rc_end += len;
    if (s->rc_end - s->rc_start > cap) {
        s->rc_start = s->rc_end - cap;
    }
    SL_ASSERT(s->rc_end - s->rc_start <= cap && s->rc_end == w->pos + w->len);
}

bool shard_rc_get(struct sl_shard *s, const struct segment *g, uint64_t pos, uint32_t len,
                  uint8_t *out)
{
    if (s->rc_buf == NULL || s->rc_seg != g || pos < s->rc_start || pos + len > s->rc_end) {
        return false;
    }
    uint32_t cap = s->cfg.read_cache_bytes;
    uint32_t at = (uint32_t)(pos % cap);
    uint32_t first = cap - at < len ? cap - at : len;
    memcpy(out, s->rc_buf + at, first);
    memcpy(out + first, s->rc_buf, len - first);
    return true;
}

/* Makes dio_tail hold g's block at `off` (aligned), read back from the file:
 * only while no write of g is in flight. */
static int tail_load(struct sl_shard *s, struct segment *g, uint64_t off)
{
    SL_ASSERT(off % SL_DIO_ALIGN == 0 && g->dio_fd >= 0);
    for (uint32_t i = 0; i < s->fifo_len; i++) {
        const struct wbuf *x = s->fifo[(s->fifo_head + i) % s->cfg.write_bufs];
        SL_ASSERT(x->seg != g || !x->issued);
    }
    if (s->dio_tail == NULL) {
        void *p = NULL;
        if (posix_memalign(&p, SL_DIO_ALIGN, SL_DIO_ALIGN) != 0) {
            return SL_ENOMEM;
        }
        s->dio_tail = p;
    }
    /* O_DIRECT read through a descriptor of its own (the writing one is
     * write-only): what the device holds, never a cached page. */
    char name[64];
    seg_name(name, sizeof(name), g->base_seq, "log");
    int fd = openat(s->dir_fd, name, O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (fd < 0) {
        return sl_err_from_errno(errno);
    }
    ssize_t n;
    do {
        n = pread(fd, s->dio_tail, SL_DIO_ALIGN, (off_t)off);
    } while (n < 0 && errno == EINTR);
    int e = errno;
    close(fd);
    if (n < 0) {
        return sl_err_from_errno(e);
    }
    /* Past the end of the file reads as zeros (a file cut inside the block). */
    memset(s->dio_tail + n, 0, SL_DIO_ALIGN - (size_t)n);
    s->dio_tail_seg = g;
    s->dio_tail_off = off;
    return SL_OK;
}

int shard_dio_prepare(struct sl_shard *s, struct wbuf *w)
{
    SL_ASSERT(shard_direct(s) && w->len > 0 && w->head == w->pos % SL_DIO_ALIGN);
    uint8_t *base = wbuf_bytes(w) - w->head;
    SL_ASSERT(((uintptr_t)base % SL_DIO_ALIGN) == 0);
    if (w->head > 0) {
        uint64_t off = w->pos - w->head;
        if (s->dio_tail_seg != w->seg || s->dio_tail_off != off) {
            int rc = tail_load(s, w->seg, off);
            if (rc != SL_OK) {
                return rc;
            }
        }
        memcpy(base, s->dio_tail, w->head);
    }
    uint32_t used = w->head + w->len;
    uint32_t io = (used + SL_DIO_ALIGN - 1) / SL_DIO_ALIGN * SL_DIO_ALIGN;
    memset(base + used, 0, io - used);
    w->io_len = io;
    /* The block under the new data end, for the next write's head. */
    uint32_t whole = used / SL_DIO_ALIGN * SL_DIO_ALIGN;
    if (used > whole) {
        if (s->dio_tail == NULL) {
            void *p = NULL;
            if (posix_memalign(&p, SL_DIO_ALIGN, SL_DIO_ALIGN) != 0) {
                return SL_ENOMEM;
            }
            s->dio_tail = p;
        }
        memcpy(s->dio_tail, base + whole, used - whole);
    }
    s->dio_tail_seg = w->seg;
    s->dio_tail_off = w->pos - w->head + whole;
    rc_put(s, w);
    return SL_OK;
}

int sl_shard_probe_direct(const char *dir, char *why, size_t why_len)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/.direct-probe.%ld", dir, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(path)) {
        snprintf(why, why_len, "io_mode = direct: data directory path too long: %s", dir);
        return SL_EINVAL;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EINVAL) {
        /* Some filesystems refuse the flag at open, others at the first
         * write: either way it is the filesystem. */
        (void)unlink(path);
        no_direct_why(why, why_len, dir);
        return SL_EUNSUPPORTED;
    }
    if (fd < 0) {
        int e = errno;
        snprintf(why, why_len, "io_mode = direct: cannot create a probe file in %s: %s", dir,
                 strerror(e));
        return sl_err_from_errno(e);
    }
    void *buf = NULL;
    int rc = SL_OK;
    if (posix_memalign(&buf, SL_DIO_ALIGN, SL_DIO_ALIGN) != 0) {
        rc = SL_ENOMEM;
        snprintf(why, why_len, "io_mode = direct: out of memory");
    } else {
        memset(buf, 0, SL_DIO_ALIGN);
        ssize_t w = pwrite(fd, buf, SL_DIO_ALIGN, 0);
        int e = errno;
        if (w < 0 && e == EINVAL) {
            no_direct_why(why, why_len, dir);
            rc = SL_EUNSUPPORTED;
        } else if (w != (ssize_t)SL_DIO_ALIGN || fdatasync(fd) != 0) {
            e = w < 0 ? e : errno;
            snprintf(why, why_len, "io_mode = direct: a probe write in %s failed: %s", dir,
                     strerror(e));
            rc = SL_EIO;
        }
    }
    free(buf);
    close(fd);
    (void)unlink(path);
    return rc;
}
