/* shard.c - the shard log: segments, group-commit writes, recovery, reads,
 * retention.
 *
 * Files in the shard directory (docs/FORMAT.md):
 *   <base-seq, 20 digits>.log   batches, back to back, append-only
 *   <base-seq, 20 digits>.idx   32-byte entries {seq, pos, time_ms, len, check}
 * One index serves both lookups (by sequence and by append time): entries are
 * sparse (one per index_interval_bytes of log) and both keys grow with the
 * position, so a second file would hold the same points twice.
 *
 * Write path. An append validates the batch, copies it into the shard's
 * staging buffer (one of write_bufs), stamps base sequence and append time,
 * and queues a pending ack. At the end of the loop tick (sl_ring_defer) the
 * staging buffer becomes one io_uring write; writes are never linked, several
 * may be in flight, and they complete in any order: written_pos advances over
 * the contiguous completed prefix (the in-flight FIFO). One fdatasync per
 * shard is in flight at a time and covers every write completed before it
 * was issued (group commit). Acks run in append order once the batch is
 * durable (ALWAYS: synced_pos >= end and the segment's directory entry is
 * synced) or written (INTERVAL).
 *
 * Crash-safety order:
 *   new segment: create .log/.idx -> fsync(dir) before any batch in it is
 *     acknowledged as durable;
 *   data: write -> fdatasync(log) -> ack;
 *   index: an entry is written to .idx only after the data it points to is
 *     durable, so any entry found on disk points at durable batches;
 *   seal (roll): last data fdatasync -> final entry written -> fsync(idx).
 *   A sealed segment is every segment but the newest, and is trusted.
 * Recovery reads the active (newest) segment from its last index entry whose
 * batch verifies, checks every batch after it, truncates after the last valid
 * one (logging the byte count) and fdatasyncs.
 *
 * Errors. A failed write or fsync (other than ENOSPC on write) makes the shard
 * refuse writes for good (SL_EFATAL): pending appends fail, nothing is
 * retried. ENOSPC on a write fails that batch and every later one, rewinds
 * the sequence and the file to the last good batch, and lets the next append
 * try again. Reads keep working in both cases.
 *
 * Threading: everything runs on the thread of the shard's ring.
 */
#include "storage/shard.h"

#include "common/assert.h"
#include "common/checksum.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/ring.h"
#include "storage/batch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "index entries are stored in host order, which must be little-endian"
#endif

#define SEG_NAME_DIGITS 20
#define RECOVERY_CHUNK_BYTES (1u << 20)
#define WB_CHUNK (1u << 20) /* INTERVAL: start writeback every this many bytes written */

/* On-disk index entry. `check` is the low 32 bits of XXH3-64 of the first 28
 * bytes, so a torn or flipped entry is recognised and dropped. */
struct idx_entry {
    uint64_t seq;     /* base sequence of the batch */
    uint64_t pos;     /* byte offset of the batch in the .log */
    uint64_t time_ms; /* the batch's append time */
    uint32_t len;     /* the batch's length */
    uint32_t check;
};
_Static_assert(sizeof(struct idx_entry) == 32, "index entry is part of the on-disk format");

enum wbuf_state { WBUF_FREE = 0, WBUF_FILLING, WBUF_INFLIGHT };

struct segment;

/* A staging buffer; while INFLIGHT it is one io_uring write. */
struct wbuf {
    struct sl_io_op op;
    struct sl_shard *shard;
    struct segment *seg;
    uint8_t *data; /* the pooled buffer (cap bytes), allocated on first use */
    uint8_t *big;  /* a one-batch buffer for a batch larger than cap, or NULL */
    uint32_t cap;
    uint32_t len;
    uint32_t done; /* bytes the kernel reported written (short writes resume) */
    uint64_t pos;  /* segment offset of the first byte */
    int state;
    int err;     /* errno of a failed write, else 0 */
    bool issued; /* handed to the ring (false: its segment has no file yet) */
};

struct pending {
    struct segment *seg;
    uint64_t end; /* segment offset after the batch */
    uint64_t base_seq;
    uint64_t time_ms;
    uint32_t count;
    uint32_t len;
    bool durable; /* acknowledged after fdatasync (else after the write) */
    sl_append_cb cb;
    void *ctx;
};

enum seal_state { SEAL_NONE = 0, SEAL_WAIT, SEAL_IDX_SYNC, SEAL_DONE };

struct segment {
    struct sl_shard *shard;
    uint64_t base_seq;
    uint64_t bytes;        /* log size (active: including staged batches) */
    uint64_t first_time_ms; /* append time of the first batch (0 = empty/unknown) */
    uint64_t last_time_ms;  /* append time of the last batch (0 = unknown) */
    int log_fd;             /* -1 while a sealed segment is closed */
    int idx_fd;
    struct idx_entry *idx;  /* malloc'd (active, rebuilt) or mmapped (sealed) */
    uint32_t idx_count;
    uint32_t idx_cap;
    size_t idx_map_len;     /* > 0 when idx is an mmap */
    uint32_t refs;          /* reads holding the segment */
    uint64_t lru_tick;
    bool deleted;           /* unlinked by retention; freed when refs drops to 0 */
    /* write state: active and sealing segments */
    bool writing;
    uint64_t written_pos;
    uint64_t synced_pos;
    uint64_t wb_pos;        /* INTERVAL: writeback started up to here */
    uint64_t visible_pos;
    uint64_t dir_gen;       /* directory fsync generation that covers this file */
    uint32_t idx_written;   /* entries written to the .idx file */
    uint32_t idx_partial;   /* bytes of entry idx_written written by a short write */
    bool index_next;        /* index the next append (the first after recovery) */
    bool idx_busy;
    int seal;
    uint64_t last_pos;      /* the last batch: for the final index entry */
    uint32_t last_len;
    uint64_t last_base;
    uint64_t last_seq;
    struct pending acked_last; /* the newest acknowledged batch (count 0: none) */
    struct sl_io_op idx_op;
};


struct sl_shard {
    struct sl_ring *ring;
    struct sl_clock *clock;
    struct sl_shard_config cfg;
    char *dir;
    int dir_fd;
    int state; /* SL_OK, SL_ENOSPC, SL_EFATAL */
    bool failing; /* a write failed with ENOSPC; rewinding once writes drain */
    bool closing;
    uint32_t ops; /* ring ops in flight issued by this shard (reads included) */

    struct segment **segs; /* ascending base_seq; the last one is active */
    uint32_t seg_count;
    uint32_t seg_cap;
    uint32_t segs_open;     /* sealed segments with fd + index loaded */
    uint32_t writing_count; /* active + sealing segments (at the end of segs) */
    uint64_t lru_clock;

    uint64_t next_seq;
    uint64_t visible_seq;
    uint64_t visible_time_ms;
    uint64_t last_append_ms;
    uint32_t pend_durable; /* pending appends that wait for an fdatasync */
    sl_shard_listener listener;
    void *listener_ctx;

    struct wbuf *wbufs;
    uint32_t wbuf_free;
    struct wbuf *filling;
    struct wbuf **fifo; /* in-flight writes in submission (= file) order */
    uint32_t fifo_head;
    uint32_t fifo_len;

    struct pending *pend; /* ring of pending_max */
    uint32_t pend_head;
    uint32_t pend_len;

    bool sync_busy;
    uint64_t sync_start_ns; /* of the fdatasync in flight (stats.fsync_ns) */
    struct segment *sync_seg;
    uint64_t sync_target;
    struct sl_io_op sync_op;
    uint64_t dir_gen;        /* bumped when a file is created */
    uint64_t dir_synced_gen; /* covered by the last completed dir fsync */
    bool dir_busy;
    uint64_t dir_target;
    struct sl_io_op dir_op;
    bool timer_armed;
    bool sync_due; /* INTERVAL: the timer fired */
    struct sl_io_op timer_op;
    bool wb_busy; /* INTERVAL: a writeback start is in flight (holds wb_seg) */
    struct segment *wb_seg;
    uint64_t wb_target;
    struct sl_io_op wb_op;
    int fatal_errno;
    const char *fatal_what;
    struct sl_deferred flush;

    struct sl_log_ratelimit rl;
    struct sl_shard_stats stats;
};

/* ------------------------------------------------------------------ */
/* configuration                                                       */

void sl_shard_config_default(struct sl_shard_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->segment_bytes = 256ull << 20;
    cfg->segment_age_ms = 7ull * 24 * 3600 * 1000;
    cfg->retention_ms = 7ull * 24 * 3600 * 1000;
    cfg->retention_bytes = 0;
    cfg->index_interval_bytes = 16u << 10;
    cfg->write_buf_bytes = 1u << 20;
    cfg->write_bufs = 4;
    cfg->pending_max = 4096;
    cfg->batch_bytes_max = 8u << 20;
    cfg->flush_interval_ms = 1000;
    cfg->open_segments_max = 16;
    cfg->flush = SL_FLUSH_ALWAYS;
    cfg->clock = NULL;
}

int sl_shard_config_check(const struct sl_shard_config *cfg, char *why, size_t why_len)
{
    const char *msg = NULL;
    if (cfg->segment_bytes < 4096 || cfg->segment_bytes > (1ull << 40)) {
        msg = "segment_bytes must be in [4 KiB, 1 TiB]";
    } else if (cfg->retention_ms == 0 || cfg->retention_ms > SL_RETENTION_MS_MAX) {
        msg = "retention must be in (0, 8760 h]";
    } else if (cfg->index_interval_bytes < 256 || cfg->index_interval_bytes > (64u << 20)) {
        msg = "index_interval_bytes must be in [256, 64 MiB]";
    } else if (cfg->write_buf_bytes < 4096 || cfg->write_buf_bytes > (256u << 20)) {
        msg = "write_buf_bytes must be in [4 KiB, 256 MiB]";
    } else if (cfg->write_bufs < 2 || cfg->write_bufs > 64) {
        msg = "write_bufs must be in [2, 64]";
    } else if (cfg->pending_max < 1 || cfg->pending_max > (1u << 24)) {
        msg = "pending_max must be in [1, 16 Mi]";
    } else if (cfg->batch_bytes_max <= SL_BATCH_HEADER_BYTES ||
               cfg->batch_bytes_max > SL_BATCH_BYTES_MAX) {
        msg = "batch_bytes_max must be in (88 B, 64 MiB]";
    } else if (cfg->flush != SL_FLUSH_ALWAYS && cfg->flush != SL_FLUSH_INTERVAL) {
        msg = "flush must be always or interval";
    } else if (cfg->flush == SL_FLUSH_INTERVAL &&
               (cfg->flush_interval_ms < 1 || cfg->flush_interval_ms > 3600000)) {
        msg = "flush_interval_ms must be in [1, 3600000]";
    } else if (cfg->open_segments_max < 1 || cfg->open_segments_max > 65536) {
        msg = "open_segments_max must be in [1, 65536]";
    }
    if (msg != NULL) {
        snprintf(why, why_len, "%s", msg);
        return SL_EINVAL;
    }
    return SL_OK;
}

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static uint64_t now_ms(struct sl_shard *s)
{
    return sl_clock_now_ms(s->clock);
}

static void seg_name(char *out, size_t cap, uint64_t base, const char *ext)
{
    snprintf(out, cap, "%0*" PRIu64 ".%s", SEG_NAME_DIGITS, base, ext);
}

static struct idx_entry make_entry(uint64_t seq, uint64_t pos, uint64_t time_ms, uint32_t len)
{
    struct idx_entry e = {.seq = seq, .pos = pos, .time_ms = time_ms, .len = len, .check = 0};
    e.check = sl_checksum32(&e, offsetof(struct idx_entry, check));
    return e;
}

static bool entry_ok(const struct idx_entry *e)
{
    return e->check == sl_checksum32(e, offsetof(struct idx_entry, check));
}

static uint32_t idx_cap_for(const struct sl_shard_config *cfg, uint64_t bytes)
{
    /* Entries are at least index_interval_bytes apart, plus the first and
     * the final one; a segment holds at most max(segment_bytes, one batch)
     * plus what was appended before a roll was noticed. */
    uint64_t span = (cfg->segment_bytes > bytes ? cfg->segment_bytes : bytes) +
                    cfg->batch_bytes_max;
    uint64_t n = span / cfg->index_interval_bytes + 3;
    return n > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)n;
}

/* ------------------------------------------------------------------ */
/* segments: load, unload, free                                        */

static void seg_unload(struct segment *g)
{
    if (g->idx_map_len > 0) {
        munmap(g->idx, g->idx_map_len);
    } else {
        free(g->idx);
    }
    g->idx = NULL;
    g->idx_map_len = 0;
    g->idx_count = 0;
    g->idx_cap = 0;
    if (g->log_fd >= 0) {
        close(g->log_fd);
        g->log_fd = -1;
    }
    if (g->idx_fd >= 0) {
        close(g->idx_fd);
        g->idx_fd = -1;
    }
}

static void idx_done(struct sl_io_op *op, int res);

static void seg_free(struct segment *g)
{
    seg_unload(g);
    free(g);
}

static struct segment *seg_new(struct sl_shard *s, uint64_t base)
{
    struct segment *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        return NULL;
    }
    g->shard = s;
    g->base_seq = base;
    g->idx_op.cb = idx_done;
    g->log_fd = -1;
    g->idx_fd = -1;
    return g;
}

static void idx_done(struct sl_io_op *op, int res);

static bool seg_loaded(const struct segment *g)
{
    return g->log_fd >= 0;
}

/* Scans a log file from `pos`, appending index entries per the interval rule
 * to g->idx (capacity g->idx_cap), verifying every batch and sequence
 * continuity. Stops at the first invalid or incomplete batch; *end_pos is
 * the offset after the last valid one. Synchronous (start-up and repair). */
static int scan_log(struct sl_shard *s, struct segment *g, uint64_t pos, uint64_t expect_seq,
                    uint64_t file_size, uint64_t *end_pos)
{
    /* The hard ceiling, not the configured batch_bytes_max: lowering the
     * setting must never make recovery cut batches stored before. */
    size_t cap = RECOVERY_CHUNK_BYTES;
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        return SL_ENOMEM;
    }
    uint64_t last_idx_pos = g->idx_count > 0 ? g->idx[g->idx_count - 1].pos : 0;
    bool have_idx = g->idx_count > 0;
    bool stop = false;
    while (pos < file_size && !stop) {
        size_t want = file_size - pos < cap ? (size_t)(file_size - pos) : cap;
        size_t got = 0;
        int rc = sl_pread_full(g->log_fd, buf, want, pos, &got);
        if (rc != SL_OK) {
            free(buf);
            return rc;
        }
        s->stats.recovery_read_bytes += got;
        size_t off = 0;
        while (off < got) {
            struct sl_batch_header h;
            rc = sl_batch_peek(buf + off, got - off, &h);
            if (rc == SL_EAGAIN && pos + off + SL_BATCH_HEADER_BYTES <= file_size) {
                break; /* header cut by the chunk: read on from here */
            }
            if (rc != SL_OK || pos + off + h.length > file_size) {
                stop = true; /* torn or corrupt */
                break;
            }
            if (h.length > got - off) {
                break; /* batch cut by the chunk: read on from here */
            }
            if (sl_batch_verify(buf + off, &h) != SL_OK || h.base_seq != expect_seq) {
                stop = true;
                break;
            }
            uint64_t bpos = pos + off;
            if (!have_idx || bpos >= last_idx_pos + s->cfg.index_interval_bytes) {
                SL_ASSERT(g->idx_count < g->idx_cap);
                g->idx[g->idx_count++] = make_entry(h.base_seq, bpos, h.append_time_ms, h.length);
                last_idx_pos = bpos;
                have_idx = true;
            }
            if (g->first_time_ms == 0) {
                g->first_time_ms = h.append_time_ms;
            }
            g->last_time_ms = h.append_time_ms;
            g->last_pos = bpos;
            g->last_len = h.length;
            g->last_base = h.base_seq;
            g->last_seq = sl_batch_last_seq(&h);
            expect_seq = g->last_seq + 1;
            off += h.length;
        }
        if (!stop && off == 0) {
            /* One batch larger than the buffer: grow to fit it. */
            struct sl_batch_header h;
            if (sl_batch_peek(buf, got, &h) != SL_OK || h.length <= cap) {
                stop = true;
                break;
            }
            free(buf);
            cap = h.length;
            buf = malloc(cap);
            if (buf == NULL) {
                return SL_ENOMEM;
            }
        }
        pos += off;
    }
    free(buf);
    *end_pos = pos;
    return SL_OK;
}

/* Validates a loaded index: entries verify, grow strictly, and lie inside
 * the log; the first is at 0 (when any). Returns the valid prefix length. */
static uint32_t idx_valid_prefix(const struct segment *g, const struct idx_entry *e, uint32_t n,
                                 uint64_t file_size)
{
    uint32_t i = 0;
    for (; i < n; i++) {
        if (!entry_ok(&e[i]) || e[i].pos + e[i].len > file_size ||
            e[i].len <= SL_BATCH_HEADER_BYTES) {
            break;
        }
        if (i == 0 && (e[0].pos != 0 || e[0].seq != g->base_seq)) {
            break;
        }
        if (i > 0 && (e[i].seq <= e[i - 1].seq || e[i].pos < e[i - 1].pos + e[i - 1].len ||
                      e[i].time_ms < e[i - 1].time_ms)) {
            break;
        }
    }
    return i;
}

static void evict_cold(struct sl_shard *s, const struct segment *keep);

/* Rebuilds a sealed segment's index from its log (the .idx was missing or
 * damaged) and rewrites the .idx file. */
static int seg_rebuild_index(struct sl_shard *s, struct segment *g, uint64_t file_size)
{
    sl_warn("storage", "%s: segment %" PRIu64 ": index missing or damaged, rebuilding from log",
            s->dir, g->base_seq);
    g->idx_cap = idx_cap_for(&s->cfg, file_size);
    g->idx = calloc(g->idx_cap, sizeof(*g->idx));
    if (g->idx == NULL) {
        return SL_ENOMEM;
    }
    g->idx_count = 0;
    uint64_t end = 0;
    int rc = scan_log(s, g, 0, g->base_seq, file_size, &end);
    if (rc != SL_OK) {
        return rc;
    }
    if (end != file_size) {
        sl_error("storage",
                 "%s: sealed segment %" PRIu64 " is corrupt at offset %" PRIu64
                 " (of %" PRIu64 " bytes); its records from there on are not served",
                 s->dir, g->base_seq, end, file_size);
    }
    if (g->idx_count > 0 && g->idx[g->idx_count - 1].pos != g->last_pos) {
        /* the final entry names the last batch (retention reads its time) */
        SL_ASSERT(g->idx_count < g->idx_cap);
        g->idx[g->idx_count++] =
            make_entry(g->last_base, g->last_pos, g->last_time_ms, g->last_len);
    }
    char name[64];
    seg_name(name, sizeof(name), g->base_seq, "idx");
    int fd = sl_openat(s->dir_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (sl_pwrite_full(fd, g->idx, (size_t)g->idx_count * sizeof(*g->idx), 0) == SL_OK) {
            (void)sl_fsync_fd(fd);
        }
        close(fd);
    }
    return SL_OK;
}

/* Loads a sealed segment for reading: opens the log and maps its index,
 * verifying the index (rebuilding it from the log when damaged). */
static int seg_load(struct sl_shard *s, struct segment *g)
{
    g->lru_tick = ++s->lru_clock;
    if (seg_loaded(g)) {
        return SL_OK;
    }
    char name[64];
    seg_name(name, sizeof(name), g->base_seq, "log");
    g->log_fd = openat(s->dir_fd, name, O_RDONLY | O_CLOEXEC);
    if (g->log_fd < 0) {
        int rc = sl_err_from_errno(errno);
        sl_error("storage", "%s: cannot open %s: %s", s->dir, name, strerror(errno));
        return rc == SL_ENOTFOUND ? SL_ECORRUPT : rc;
    }
    struct stat st;
    if (fstat(g->log_fd, &st) != 0) {
        int rc = sl_err_from_errno(errno);
        seg_unload(g);
        return rc;
    }
    uint64_t file_size = (uint64_t)st.st_size;
    seg_name(name, sizeof(name), g->base_seq, "idx");
    int ifd = openat(s->dir_fd, name, O_RDONLY | O_CLOEXEC);
    struct stat ist;
    bool good = false;
    if (ifd >= 0 && fstat(ifd, &ist) == 0 && ist.st_size >= (off_t)sizeof(struct idx_entry)) {
        size_t n = (size_t)ist.st_size / sizeof(struct idx_entry);
        void *map = mmap(NULL, n * sizeof(struct idx_entry), PROT_READ, MAP_SHARED, ifd, 0);
        if (map != MAP_FAILED) {
            struct idx_entry *e = map;
            uint32_t valid = idx_valid_prefix(g, e, (uint32_t)n, file_size);
            /* Complete: every entry valid and the last one ends the log. */
            if (valid == n && e[n - 1].pos + e[n - 1].len == file_size) {
                g->idx = e;
                g->idx_count = (uint32_t)n;
                g->idx_map_len = n * sizeof(struct idx_entry);
                g->first_time_ms = e[0].time_ms;
                g->last_time_ms = e[n - 1].time_ms;
                good = true;
            } else {
                munmap(map, n * sizeof(struct idx_entry));
            }
        }
    }
    if (ifd >= 0) {
        close(ifd);
    }
    if (!good) {
        int rc = seg_rebuild_index(s, g, file_size);
        if (rc != SL_OK) {
            seg_unload(g);
            return rc;
        }
    }
    s->segs_open++;
    evict_cold(s, g); /* not g: its caller is about to take a reference */
    return SL_OK;
}

/* Keeps at most open_segments_max sealed segments loaded (LRU, unheld,
 * never `keep`). */
static void evict_cold(struct sl_shard *s, const struct segment *keep)
{
    while (s->segs_open > s->cfg.open_segments_max) {
        struct segment *victim = NULL;
        for (uint32_t i = 0; i + 1 < s->seg_count; i++) {
            struct segment *g = s->segs[i];
            if (g != keep && seg_loaded(g) && !g->writing && g->refs == 0 &&
                (victim == NULL || g->lru_tick < victim->lru_tick)) {
                victim = g;
            }
        }
        if (victim == NULL) {
            return; /* all held by reads: over the bound until they finish */
        }
        seg_unload(victim);
        s->segs_open--;
    }
}

static void seg_release(struct sl_shard *s, struct segment *g)
{
    SL_ASSERT(g->refs > 0);
    g->refs--;
    if (g->refs == 0 && g->deleted) {
        if (seg_loaded(g)) {
            s->segs_open--;
        }
        seg_free(g);
    } else if (g->refs == 0 && s->segs_open > s->cfg.open_segments_max) {
        evict_cold(s, NULL); /* back under the bound once reads let go */
    }
}

static int segs_push(struct sl_shard *s, struct segment *g)
{
    if (s->seg_count == s->seg_cap) {
        uint32_t cap = s->seg_cap ? s->seg_cap * 2 : 16;
        struct segment **n = realloc(s->segs, cap * sizeof(*n));
        if (n == NULL) {
            return SL_ENOMEM;
        }
        s->segs = n;
        s->seg_cap = cap;
    }
    s->segs[s->seg_count++] = g;
    return SL_OK;
}

static struct segment *active(struct sl_shard *s)
{
    SL_ASSERT(s->seg_count > 0);
    return s->segs[s->seg_count - 1];
}

/* Makes `g` a segment being written: its in-memory index, sized for a full
 * segment (fixed: index writes point into it, so it is never reallocated). */
static int seg_start_writing(struct sl_shard *s, struct segment *g)
{
    g->idx_cap = idx_cap_for(&s->cfg, 0);
    g->idx = calloc(g->idx_cap, sizeof(*g->idx));
    if (g->idx == NULL) {
        return SL_ENOMEM;
    }
    g->writing = true;
    s->writing_count++;
    g->dir_gen = UINT64_MAX; /* no files yet */
    return SL_OK;
}

/* Creates the .log and .idx files of a segment. The caller arranges the
 * directory fsync (dir_gen) before acking data in it. */
static int seg_create_files(struct sl_shard *s, struct segment *g)
{
    char name[64];
    seg_name(name, sizeof(name), g->base_seq, "log");
    g->log_fd = sl_openat(s->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (g->log_fd < 0) {
        int rc = sl_err_from_errno(errno);
        sl_error("storage", "%s: cannot create %s: %s", s->dir, name, strerror(errno));
        return rc;
    }
    seg_name(name, sizeof(name), g->base_seq, "idx");
    g->idx_fd = sl_openat(s->dir_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (g->idx_fd < 0) {
        int rc = sl_err_from_errno(errno);
        sl_error("storage", "%s: cannot create %s: %s", s->dir, name, strerror(errno));
        close(g->log_fd);
        g->log_fd = -1;
        seg_name(name, sizeof(name), g->base_seq, "log");
        (void)sl_unlinkat(s->dir_fd, name, 0);
        return rc;
    }
    g->dir_gen = ++s->dir_gen;
    return SL_OK;
}

/* ------------------------------------------------------------------ */
/* write path                                                          */

static void maybe_sync(struct sl_shard *s);
static void process_acks(struct sl_shard *s);
static uint32_t seg_find_seq(const struct sl_shard *s, uint64_t seq);
static void persist_index(struct sl_shard *s, struct segment *g);

static bool seg_dir_synced(const struct sl_shard *s, const struct segment *g)
{
    return g->dir_gen <= s->dir_synced_gen;
}

static struct pending *pend_at(struct sl_shard *s, uint32_t i)
{
    return &s->pend[(s->pend_head + i) % s->cfg.pending_max];
}

static void pend_pop(struct sl_shard *s)
{
    s->pend_head = (s->pend_head + 1) % s->cfg.pending_max;
    s->pend_len--;
}

/* Fails every pending append from index `from` on (newest last), calling
 * their callbacks oldest first. */
static void fail_pending_from(struct sl_shard *s, uint32_t from, int err)
{
    uint32_t n = s->pend_len - from;
    for (uint32_t i = from; i < s->pend_len; i++) {
        s->pend_durable -= pend_at(s, i)->durable ? 1 : 0;
    }
    s->pend_len = from;
    for (uint32_t i = 0; i < n; i++) {
        struct pending p = s->pend[(s->pend_head + from + i) % s->cfg.pending_max];
        if (p.cb != NULL) {
            p.cb(p.ctx, err, p.base_seq, p.count);
        }
    }
}

static void wbuf_release(struct sl_shard *s, struct wbuf *w);

static void go_fatal(struct sl_shard *s, const char *what, int errnum)
{
    if (s->state != SL_EFATAL) {
        s->fatal_errno = errnum;
        s->fatal_what = what;
        sl_error("storage",
                 "%s: %s failed: %s; the shard refuses writes from now on (restart to "
                 "recover what is durable)",
                 s->dir, what, strerror(errnum));
    }
    s->state = SL_EFATAL;
    if (s->filling != NULL) {
        /* staged but never written: their pending entries fail below */
        wbuf_release(s, s->filling);
        s->filling = NULL;
    }
    fail_pending_from(s, 0, SL_EFATAL);
}

static struct wbuf *wbuf_take(struct sl_shard *s, struct segment *g)
{
    for (uint32_t i = 0; i < s->cfg.write_bufs; i++) {
        struct wbuf *w = &s->wbufs[i];
        if (w->state != WBUF_FREE) {
            continue;
        }
        if (w->data == NULL) {
            w->data = malloc(s->cfg.write_buf_bytes);
            if (w->data == NULL) {
                return NULL;
            }
        }
        w->state = WBUF_FILLING;
        w->seg = g;
        w->pos = g->bytes;
        w->len = 0;
        w->done = 0;
        w->err = 0;
        w->cap = s->cfg.write_buf_bytes;
        s->wbuf_free--;
        return w;
    }
    return NULL;
}

static uint8_t *wbuf_bytes(struct wbuf *w)
{
    return w->big != NULL ? w->big : w->data;
}

static void write_done(struct sl_io_op *op, int res);

static void wbuf_issue(struct sl_shard *s, struct wbuf *w)
{
    w->issued = true;
    s->ops++;
    s->stats.writes++;
    sl_ring_write(s->ring, &w->op, w->seg->log_fd, wbuf_bytes(w) + w->done, w->len - w->done,
                  w->pos + w->done);
}

static void wbuf_submit(struct sl_shard *s, struct wbuf *w)
{
    SL_ASSERT(w->state == WBUF_FILLING && w->len > 0);
    SL_ASSERT(s->fifo_len < s->cfg.write_bufs);
    w->state = WBUF_INFLIGHT;
    s->fifo[(s->fifo_head + s->fifo_len) % s->cfg.write_bufs] = w;
    s->fifo_len++;
    if (s->filling == w) {
        s->filling = NULL;
    }
    w->issued = false;
    if (w->seg->log_fd >= 0) {
        wbuf_issue(s, w);
    }
}

static void wbuf_release(struct sl_shard *s, struct wbuf *w)
{
    free(w->big);
    w->big = NULL;
    w->state = WBUF_FREE;
    w->len = 0;
    s->wbuf_free++;
}

/* After an ENOSPC write: once every write has drained, cut the log back to
 * the failed write's offset, fail the batches from there on and rewind the
 * sequence, so that the next append continues right after the last good
 * batch. */
/* Drops the segments after `g`, none of which has files, and makes `g`
 * active again (unsealed). Leaves things alone if one has files. */
static void undo_rolls(struct sl_shard *s, struct segment *g)
{
    uint32_t i = s->seg_count;
    while (i > 0 && s->segs[i - 1] != g) {
        if (s->segs[i - 1]->log_fd >= 0) {
            return;
        }
        i--;
    }
    if (i == 0) {
        return;
    }
    while (s->seg_count > i) {
        struct segment *x = s->segs[--s->seg_count];
        if (x->writing) {
            s->writing_count--;
        }
        seg_free(x);
    }
    g->seal = SEAL_NONE;
}

static void rewind_after_enospc(struct sl_shard *s)
{
    SL_ASSERT(s->failing && s->fifo_len > 0);
    struct wbuf *f = s->fifo[s->fifo_head];
    struct segment *g = f->seg;
    uint64_t cut = f->pos;
    if (g != active(s) && s->state != SL_EFATAL) {
        /* The failed write was in a segment being sealed: the segments
         * after it have no files yet (they are created only after a seal),
         * so g becomes the active segment again. */
        undo_rolls(s, g);
    }
    if (g != active(s) || s->state == SL_EFATAL) {
        go_fatal(s, "write (ENOSPC across a segment roll)", ENOSPC);
    } else if (sl_ftruncate(g->log_fd, (off_t)cut) != 0) {
        go_fatal(s, "ftruncate after ENOSPC", errno);
    } else {
        uint32_t i = 0;
        while (i < s->pend_len && !(pend_at(s, i)->seg == g && pend_at(s, i)->end > cut)) {
            i++;
        }
        if (i < s->pend_len) {
            s->next_seq = pend_at(s, i)->base_seq;
        }
        SL_ASSERT(g->written_pos == cut);
        /* The last good batch: still pending, the newest acknowledged, or
         * (nothing acknowledged since start-up) the one recovery found. */
        struct pending last = g->acked_last;
        if (i > 0 && pend_at(s, i - 1)->seg == g) {
            last = *pend_at(s, i - 1);
        }
        if (last.count > 0 && last.end == cut) {
            g->last_pos = last.end - last.len;
            g->last_len = last.len;
            g->last_base = last.base_seq;
            g->last_seq = last.base_seq + last.count - 1;
            g->last_time_ms = last.time_ms;
        } else if (cut == 0) {
            g->first_time_ms = 0;
            g->last_time_ms = 0;
        } else {
            SL_ASSERT(g->last_pos + g->last_len == cut);
        }
        g->bytes = cut;
        while (g->idx_count > g->idx_written && g->idx[g->idx_count - 1].pos >= cut) {
            g->idx_count--;
        }
        if (s->filling != NULL) {
            wbuf_release(s, s->filling);
            s->filling = NULL;
        }
        s->state = SL_ENOSPC;
        sl_warn("storage", "%s: disk full: appends from seq %" PRIu64 " failed; will retry",
                s->dir, s->next_seq);
        fail_pending_from(s, i, SL_ENOSPC);
    }
    while (s->fifo_len > 0) {
        wbuf_release(s, s->fifo[s->fifo_head]);
        s->fifo_head = (s->fifo_head + 1) % s->cfg.write_bufs;
        s->fifo_len--;
    }
    s->failing = false;
}

static void write_done(struct sl_io_op *op, int res)
{
    struct wbuf *w = sl_container_of(op, struct wbuf, op);
    struct sl_shard *s = w->shard;
    s->ops--;
    if (res > 0 && w->done + (uint32_t)res < w->len) {
        w->done += (uint32_t)res; /* short write: continue where it stopped */
        wbuf_issue(s, w);
        return;
    }
    if (res <= 0) {
        int errnum = res < 0 ? -res : EIO;
        w->err = errnum;
        if (errnum == ENOSPC || errnum == EDQUOT) {
            s->failing = true;
        } else {
            go_fatal(s, "write", errnum);
        }
    } else {
        w->done = w->len;
    }
    /* Advance the contiguous written prefix. */
    while (s->fifo_len > 0) {
        struct wbuf *h = s->fifo[s->fifo_head];
        if (h->done != h->len || h->err != 0) {
            break;
        }
        SL_ASSERT(h->seg->written_pos == h->pos);
        h->seg->written_pos = h->pos + h->len;
        s->fifo_head = (s->fifo_head + 1) % s->cfg.write_bufs;
        s->fifo_len--;
        wbuf_release(s, h);
    }
    if (s->failing) {
        bool drained = true;
        for (uint32_t i = 0; i < s->fifo_len; i++) {
            struct wbuf *x = s->fifo[(s->fifo_head + i) % s->cfg.write_bufs];
            drained = drained && (x->err != 0 || x->done == x->len || !x->issued);
        }
        if (drained) {
            rewind_after_enospc(s);
        }
    } else if (s->state == SL_ENOSPC && res > 0) {
        sl_info("storage", "%s: writes succeed again after a full disk", s->dir);
        s->state = SL_OK;
    }
    process_acks(s);
    maybe_sync(s);
}

static void sync_done(struct sl_io_op *op, int res)
{
    struct sl_shard *s = sl_container_of(op, struct sl_shard, sync_op);
    s->ops--;
    s->sync_busy = false;
    s->stats.fsync_ns += sl_clock_mono_ns() - s->sync_start_ns;
    struct segment *g = s->sync_seg;
    s->sync_seg = NULL;
    if (res < 0) {
        go_fatal(s, "fdatasync", -res);
        maybe_sync(s);
        return;
    }
    SL_ASSERT(s->sync_target >= g->synced_pos);
    g->synced_pos = s->sync_target;
    process_acks(s);
    persist_index(s, g);
    maybe_sync(s);
}

static void dir_sync_done(struct sl_io_op *op, int res)
{
    struct sl_shard *s = sl_container_of(op, struct sl_shard, dir_op);
    s->ops--;
    s->dir_busy = false;
    if (res < 0) {
        go_fatal(s, "directory fsync", -res);
        return;
    }
    s->dir_synced_gen = s->dir_target;
    process_acks(s);
    maybe_sync(s);
}

static void wb_done(struct sl_io_op *op, int res)
{
    struct sl_shard *s = sl_container_of(op, struct sl_shard, wb_op);
    s->ops--;
    s->wb_busy = false;
    struct segment *g = s->wb_seg;
    s->wb_seg = NULL;
    if (res >= 0) {
        g->wb_pos = s->wb_target;
    } /* else: advisory; the interval fdatasync reports real trouble */
    seg_release(s, g);
    maybe_sync(s);
}

static void timer_done(struct sl_io_op *op, int res)
{
    (void)res; /* -ETIME on expiry; any other result also just means "now" */
    struct sl_shard *s = sl_container_of(op, struct sl_shard, timer_op);
    s->ops--;
    s->timer_armed = false;
    s->sync_due = true;
    maybe_sync(s);
}

/* Writes index entries whose batches are durable (see the file comment). */
static void persist_index(struct sl_shard *s, struct segment *g)
{
    if (g->idx_busy || g->idx_fd < 0 || s->state == SL_EFATAL) {
        return;
    }
    uint32_t n = 0;
    while (g->idx_written + n < g->idx_count) {
        const struct idx_entry *e = &g->idx[g->idx_written + n];
        if (e->pos + e->len > g->synced_pos) {
            break;
        }
        n++;
    }
    if (n == 0) {
        return;
    }
    g->idx_busy = true;
    s->ops++;
    uint64_t off = (uint64_t)g->idx_written * sizeof(struct idx_entry) + g->idx_partial;
    sl_ring_write(s->ring, &g->idx_op, g->idx_fd, (const uint8_t *)&g->idx[g->idx_written] +
                  g->idx_partial, n * (uint32_t)sizeof(struct idx_entry) - g->idx_partial, off);
}

/* `sealed` has just been sealed: create the next segment's files and issue
 * the writes that waited for them, in file order. */
static void create_next_files(struct sl_shard *s, const struct segment *sealed)
{
    uint32_t i = seg_find_seq(s, sealed->base_seq);
    if (s->segs[i] != sealed || i + 1 >= s->seg_count) {
        return;
    }
    struct segment *g = s->segs[i + 1];
    if (g->log_fd >= 0) {
        return;
    }
    int rc = seg_create_files(s, g);
    if (rc != SL_OK) {
        go_fatal(s, "segment file creation", rc == SL_ENOSPC ? ENOSPC : EIO);
        return;
    }
    for (uint32_t k = 0; k < s->fifo_len; k++) {
        struct wbuf *w = s->fifo[(s->fifo_head + k) % s->cfg.write_bufs];
        if (w->seg == g && !w->issued) {
            wbuf_issue(s, w);
        }
    }
}

static void idx_done(struct sl_io_op *op, int res)
{
    struct segment *g = sl_container_of(op, struct segment, idx_op);
    struct sl_shard *s = g->shard;
    s->ops--;
    g->idx_busy = false;
    if (g->seal == SEAL_IDX_SYNC) {
        if (res < 0) {
            go_fatal(s, "index fsync at segment seal", -res);
            return;
        }
        g->seal = SEAL_DONE;
        g->writing = false;
        s->writing_count--;
        if (g->idx_fd >= 0) {
            close(g->idx_fd);
            g->idx_fd = -1;
        }
        s->segs_open++; /* now a loaded sealed segment */
        evict_cold(s, NULL);
        create_next_files(s, g);
        maybe_sync(s);
        return;
    }
    if (res == -ENOSPC || res == -EDQUOT) {
        /* The index is an accelerator. The active segment's entries stay in
         * memory and are written again at the next durable point (each
         * completed fdatasync tries once; no timer spins on a full disk;
         * unwritten entries only cost recovery a longer scan). A sealing
         * segment's data is already durable: it seals without a complete
         * index rather than hold every later append (seg_load finds the
         * index incomplete and rebuilds it from the log). */
        if (g != active(s)) {
            sl_warn("storage",
                    "%s: segment %" PRIu64 " sealed without a complete index (disk full); "
                    "it is rebuilt from the log when next opened",
                    s->dir, g->base_seq);
            g->idx_written = g->idx_count;
            g->idx_partial = 0;
            maybe_sync(s);
            return;
        }
        if (sl_log_ratelimit_ok(&s->rl)) {
            sl_warn("storage", "%s: index write: disk full; will retry", s->dir);
        }
        return;
    }
    if (res <= 0) {
        go_fatal(s, "index write", res < 0 ? -res : EIO);
        return;
    }
    /* A short write resumes where it stopped, byte for byte (as data
     * writes do). */
    uint32_t done = g->idx_partial + (uint32_t)res;
    g->idx_written += done / (uint32_t)sizeof(struct idx_entry);
    g->idx_partial = done % (uint32_t)sizeof(struct idx_entry);
    persist_index(s, g);
    maybe_sync(s);
}

/* A sealing segment whose data is all durable: add the final index entry
 * (the last batch), write what is left of the index, fsync it. */
static void seal_step(struct sl_shard *s, struct segment *g)
{
    if (g->written_pos != g->bytes || g->synced_pos != g->bytes) {
        return;
    }
    if (g->idx_count == 0 || g->idx[g->idx_count - 1].pos != g->last_pos) {
        SL_ASSERT(g->idx_count < g->idx_cap);
        g->idx[g->idx_count++] =
            make_entry(g->last_base, g->last_pos, g->last_time_ms, g->last_len);
    }
    persist_index(s, g);
    if (g->idx_busy || g->idx_written != g->idx_count) {
        return;
    }
    g->seal = SEAL_IDX_SYNC;
    g->idx_busy = true;
    s->ops++;
    sl_ring_fsync(s->ring, &g->idx_op, g->idx_fd, 0);
}

/* Issues the next fsync the shard needs: the directory (new files), then the
 * oldest segment with written-but-unsynced data; drives segment seals. */
static void maybe_sync(struct sl_shard *s)
{
    if (s->state == SL_EFATAL) {
        return;
    }
    if (!s->dir_busy && s->dir_synced_gen < s->dir_gen) {
        s->dir_busy = true;
        s->dir_target = s->dir_gen;
        s->ops++;
        sl_ring_fsync(s->ring, &s->dir_op, s->dir_fd, 0);
    }
    bool dirty = false;
    /* Writing segments are the newest few: start where the oldest of them
     * can be, so this stays O(segments being written), not O(segments). */
    uint32_t from = s->seg_count;
    for (uint32_t seen = 0; from > 0 && seen < s->writing_count; from--) {
        seen += s->segs[from - 1]->writing ? 1 : 0;
    }
    for (uint32_t i = from; i < s->seg_count; i++) {
        struct segment *g = s->segs[i];
        if (!g->writing) {
            continue;
        }
        bool sealing = g != active(s);
        if (sealing && g->seal == SEAL_WAIT) {
            seal_step(s, g);
        }
        if (g->written_pos <= g->synced_pos) {
            continue;
        }
        dirty = true;
        bool want = s->cfg.flush == SL_FLUSH_ALWAYS || sealing || s->sync_due || s->closing ||
                    s->pend_durable > 0;
        if (!s->sync_busy && want) {
            s->sync_busy = true;
            s->sync_seg = g;
            s->sync_target = g->written_pos;
            s->sync_due = false;
            s->ops++;
            s->stats.fsyncs++;
            s->sync_start_ns = sl_clock_mono_ns();
            sl_ring_fsync(s->ring, &s->sync_op, g->log_fd, 1);
        }
    }
    /* INTERVAL: start the writeback of every WB_CHUNK written, so the periodic
     * fdatasync finds little dirty data and does not stall the writes behind
     * it (measured: ack p99 10 ms at 100 k records/s without this). */
    struct segment *a = s->seg_count > 0 ? active(s) : NULL;
    if (s->cfg.flush == SL_FLUSH_INTERVAL && a != NULL && a->writing && !s->wb_busy &&
        !s->closing && a->log_fd >= 0 && a->written_pos >= a->wb_pos + WB_CHUNK) {
        uint64_t left = a->written_pos - a->wb_pos;
        uint32_t len = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
        s->wb_busy = true;
        s->wb_seg = a;
        s->wb_target = a->wb_pos + len;
        a->refs++;
        s->ops++;
        s->stats.writebacks++;
        sl_ring_writeback(s->ring, &s->wb_op, a->log_fd, a->wb_pos, len);
    }
    if (dirty && s->cfg.flush == SL_FLUSH_INTERVAL && !s->timer_armed && !s->sync_busy) {
        s->timer_armed = true;
        s->ops++;
        sl_ring_timeout(s->ring, &s->timer_op, (uint64_t)s->cfg.flush_interval_ms * 1000000u);
    }
}

/* Acknowledges pending appends, oldest first, while each is durable (ALWAYS)
 * or written (INTERVAL); acknowledged batches become visible to readers. */
static void process_acks(struct sl_shard *s)
{
    bool advanced = false;
    while (s->pend_len > 0) {
        struct pending *p = pend_at(s, 0);
        struct segment *g = p->seg;
        bool ok = p->durable ? (g->synced_pos >= p->end && seg_dir_synced(s, g))
                             : g->written_pos >= p->end;
        if (!ok) {
            break;
        }
        struct pending done = *p;
        pend_pop(s);
        s->pend_durable -= done.durable ? 1 : 0;
        g->acked_last = done;
        g->visible_pos = done.end;
        s->visible_seq = done.base_seq + done.count;
        s->visible_time_ms = done.time_ms;
        advanced = true;
        if (done.cb != NULL) {
            done.cb(done.ctx, SL_OK, done.base_seq, done.count);
        }
    }
    if (advanced && s->listener != NULL) {
        s->listener(s->listener_ctx, s);
    }
}

static void flush_deferred(struct sl_deferred *d)
{
    struct sl_shard *s = sl_container_of(d, struct sl_shard, flush);
    if (s->filling != NULL && s->filling->len > 0 && !s->failing) {
        wbuf_submit(s, s->filling);
    }
    maybe_sync(s);
}

/* Seals the active segment and starts a new one at next_seq. */
static int roll(struct sl_shard *s)
{
    struct segment *old = active(s);
    struct segment *g = seg_new(s, s->next_seq);
    if (g == NULL) {
        return SL_ENOMEM;
    }
    /* The new segment's files are created only once `old` is sealed (see
     * create_next_files): so at most the newest segment file on disk is ever
     * unsealed, which is what recovery assumes. Until then its batches wait
     * in the staging buffers. */
    int rc = seg_start_writing(s, g);
    if (rc == SL_OK) {
        rc = segs_push(s, g);
    }
    if (rc != SL_OK) {
        if (g->writing) {
            s->writing_count--;
        }
        seg_free(g);
        return rc;
    }
    if (s->filling != NULL && s->filling->seg == old && s->filling->len > 0) {
        wbuf_submit(s, s->filling);
    }
    old->seal = SEAL_WAIT;
    sl_debug("storage", "%s: rolled to segment %" PRIu64, s->dir, g->base_seq);
    maybe_sync(s);
    return SL_OK;
}

static bool need_roll(struct sl_shard *s, size_t len, uint64_t t)
{
    struct segment *g = active(s);
    if (g->bytes == 0) {
        return false;
    }
    if (g->bytes + len > s->cfg.segment_bytes) {
        return true;
    }
    return s->cfg.segment_age_ms > 0 && t >= g->first_time_ms + s->cfg.segment_age_ms;
}

int sl_shard_append(struct sl_shard *s, const void *batch, size_t len, sl_append_cb cb, void *ctx)
{
    return sl_shard_append_ex(s, batch, len, 0, cb, ctx);
}

void sl_shard_set_listener(struct sl_shard *s, sl_shard_listener fn, void *ctx)
{
    s->listener = fn;
    s->listener_ctx = ctx;
}

int sl_shard_append_ex(struct sl_shard *s, const void *batch, size_t len, unsigned flags,
                       sl_append_cb cb, void *ctx)
{
    if (s->closing) {
        return SL_ECLOSED;
    }
    if (s->state == SL_EFATAL) {
        return SL_EFATAL;
    }
    if (s->failing) {
        return SL_ENOSPC;
    }
    if (len > s->cfg.batch_bytes_max) {
        return SL_ETOOBIG;
    }
    /* The header now; the body checksum while copying (below). */
    struct sl_batch_header h;
    int rc = sl_batch_peek(batch, len, &h);
    if (rc == SL_EAGAIN || (rc == SL_OK && h.length != len)) {
        return SL_EPROTO; /* the declared length disagrees with the bytes given */
    }
    if (rc != SL_OK) {
        return rc;
    }
    if (s->pend_len == s->cfg.pending_max) {
        return SL_EAGAIN;
    }
    uint64_t t = now_ms(s);
    if (t < s->last_append_ms) {
        t = s->last_append_ms; /* append times never go backwards in a shard */
    }
    bool rolling = need_roll(s, len, t);
    struct wbuf *w = s->filling;
    bool fits = w != NULL && !rolling && w->big == NULL && w->len + len <= w->cap;
    if (!fits) {
        /* A new staging buffer is needed (the current one, if any, is
         * submitted; the FIFO has a slot for every buffer). */
        if (s->wbuf_free == 0) {
            return SL_EAGAIN;
        }
    }
    if (rolling) {
        rc = roll(s);
        if (rc != SL_OK) {
            return rc;
        }
        w = s->filling;
    }
    struct segment *g = active(s);
    if (!fits) {
        if (w != NULL && w->len > 0) {
            wbuf_submit(s, w);
        } else if (w != NULL) {
            wbuf_release(s, w);
        }
        s->filling = NULL;
        w = wbuf_take(s, g);
        if (w == NULL) {
            return SL_ENOMEM;
        }
        if (len > w->cap) {
            w->big = malloc(len);
            if (w->big == NULL) {
                wbuf_release(s, w);
                return SL_ENOMEM;
            }
            w->cap = (uint32_t)len;
        }
        s->filling = w;
    }
    uint64_t pos = g->bytes;
    SL_ASSERT(w->seg == g && w->pos + w->len == pos);
    uint8_t *dst = wbuf_bytes(w) + w->len;
    rc = sl_batch_copy_verify(dst, batch, &h);
    if (rc != SL_OK) {
        if (w->len == 0) {
            wbuf_release(s, w);
            s->filling = NULL;
        }
        return rc;
    }
    sl_batch_stamp(dst, s->next_seq, t);
    w->len += (uint32_t)len;

    /* The last slot stays free for the seal's final entry; a full index
     * (not expected: idx_cap_for sizes it) only makes lookups scan further. */
    if ((g->idx_count == 0 || g->index_next ||
         pos >= g->idx[g->idx_count - 1].pos + s->cfg.index_interval_bytes) &&
        g->idx_count + 1 < g->idx_cap) {
        g->idx[g->idx_count++] = make_entry(s->next_seq, pos, t, (uint32_t)len);
        g->index_next = false;
    }
    if (g->bytes == 0) {
        g->first_time_ms = t;
    }
    g->bytes += len;
    g->last_time_ms = t;
    g->last_pos = pos;
    g->last_len = (uint32_t)len;
    g->last_base = s->next_seq;
    g->last_seq = s->next_seq + h.record_count - 1;
    s->last_append_ms = t;

    struct pending *p = &s->pend[(s->pend_head + s->pend_len) % s->cfg.pending_max];
    bool durable = s->cfg.flush == SL_FLUSH_ALWAYS || (flags & SL_APPEND_DURABLE) != 0;
    *p = (struct pending){.seg = g, .end = g->bytes, .base_seq = s->next_seq, .time_ms = t,
                          .count = h.record_count, .len = (uint32_t)len, .durable = durable,
                          .cb = cb, .ctx = ctx};
    s->pend_len++;
    s->pend_durable += durable ? 1 : 0;
    s->next_seq += h.record_count;
    sl_ring_defer(s->ring, &s->flush);
    return SL_OK;
}

/* ------------------------------------------------------------------ */
/* read path                                                           */

static void read_done(struct sl_io_op *op, int res);

static void read_finish_deferred(struct sl_deferred *d)
{
    struct sl_shard_read *rd = sl_container_of(d, struct sl_shard_read, defer_);
    rd->cb(rd, rd->err_);
}

/* Completes a read: releases its segment and calls back (deferred when we
 * are still inside sl_shard_read, so the callback never runs from it). */
static void read_finish(struct sl_shard_read *rd, int err, bool from_submit)
{
    struct sl_shard *s = rd->shard_;
    if (rd->seg_ != NULL) {
        seg_release(s, rd->seg_);
        rd->seg_ = NULL;
    }
    if (err != SL_OK) {
        rd->len = 0;
        rd->batch_count = 0;
    }
    rd->err_ = err;
    if (from_submit) {
        rd->defer_.fn = read_finish_deferred;
        sl_ring_defer(s->ring, &rd->defer_);
    } else {
        rd->cb(rd, err);
    }
}

/* Index of the last segment whose base_seq <= seq (segments are sorted). */
static uint32_t seg_find_seq(const struct sl_shard *s, uint64_t seq)
{
    uint32_t lo = 0, hi = s->seg_count;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->segs[mid]->base_seq <= seq) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static uint64_t seg_first_time(struct sl_shard *s, struct segment *g)
{
    if (!g->writing && seg_load(s, g) != SL_OK) {
        return 0;
    }
    return g->first_time_ms;
}

/* Index of the last segment whose first append time is < t (or 0): the
 * first batch at or after t is in it or a later one. Loads O(log n) sealed
 * indexes. */
static uint32_t seg_find_time(struct sl_shard *s, uint64_t t)
{
    uint32_t lo = 0, hi = s->seg_count;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        struct segment *g = s->segs[mid];
        uint64_t ft = seg_first_time(s, g);
        if (g->bytes > 0 && ft < t) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Start offset in a loaded segment: the last index entry at or before the
 * target (by sequence, or strictly before it in time). */
static uint64_t seg_start_pos(const struct segment *g, const struct sl_shard_read *rd)
{
    uint32_t lo = 0, hi = g->idx_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        bool before = rd->from == SL_READ_SEQ ? g->idx[mid].seq <= rd->seq
                                              : g->idx[mid].time_ms < rd->time_ms;
        if (before) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo == 0 ? 0 : g->idx[lo - 1].pos;
}

/* The number of index entries whose position is below `pos` (entries are
 * sorted by position). */
static uint32_t idx_below_pos(const struct segment *g, uint64_t pos)
{
    uint32_t lo = 0, hi = g->idx_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (g->idx[mid].pos < pos) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static uint64_t seg_visible_end(const struct segment *g)
{
    return g->writing ? g->visible_pos : g->bytes;
}

/* Issues the ring read at rd->pos_ in the held segment, moving on to the
 * next segment at the end of this one (time reads, or reads that start at a
 * segment's end). Returns false when the read finished instead. */
static bool read_issue(struct sl_shard *s, struct sl_shard_read *rd, bool from_submit)
{
    for (;;) {
        struct segment *g = rd->seg_;
        uint64_t end = seg_visible_end(g);
        if (rd->pos_ < end) {
            uint64_t n = end - rd->pos_;
            uint32_t len = n < rd->buf_cap ? (uint32_t)n : rd->buf_cap;
            s->ops++;
            rd->op_.cb = read_done;
            rd->want_ = len;
            rd->retries_ = 0;
            sl_ring_read(s->ring, &rd->op_, g->log_fd, rd->buf, len, rd->pos_);
            return true;
        }
        /* At the visible end of this segment: the next one, if any. */
        uint32_t i = seg_find_seq(s, g->base_seq);
        if (s->segs[i] != g || i + 1 >= s->seg_count || end < g->bytes) {
            rd->next_seq = s->visible_seq;
            read_finish(rd, SL_OK, from_submit);
            return false;
        }
        struct segment *next = s->segs[i + 1];
        int rc = next->writing ? SL_OK : seg_load(s, next);
        if (rc != SL_OK) {
            read_finish(rd, rc, from_submit);
            return false;
        }
        next->refs++;
        seg_release(s, g);
        rd->seg_ = next;
        rd->pos_ = 0;
    }
}

void sl_shard_read(struct sl_shard *s, struct sl_shard_read *rd)
{
    rd->shard_ = s;
    rd->seg_ = NULL;
    rd->retries_ = 0;
    rd->len = 0;
    rd->batch_count = 0;
    rd->need_bytes = 0;
    rd->first_seq = s->seg_count > 0 ? s->segs[0]->base_seq : 0;
    rd->next_seq = s->visible_seq;
    if (rd->buf_cap < SL_BATCH_HEADER_BYTES) {
        rd->need_bytes = SL_BATCH_HEADER_BYTES;
        read_finish(rd, SL_ETOOBIG, true);
        return;
    }
    uint32_t i;
    if (rd->from == SL_READ_SEQ) {
        if (rd->seq < rd->first_seq) {
            read_finish(rd, SL_ETRIMMED, true);
            return;
        }
        if (rd->seq >= s->visible_seq) {
            read_finish(rd, rd->seq == s->visible_seq ? SL_OK : SL_EINVAL, true);
            return;
        }
        i = seg_find_seq(s, rd->seq);
    } else {
        i = seg_find_time(s, rd->time_ms);
    }
    struct segment *g = s->segs[i];
    int rc = g->writing ? SL_OK : seg_load(s, g);
    if (rc != SL_OK) {
        read_finish(rd, rc, true);
        return;
    }
    g->refs++;
    rd->seg_ = g;
    rd->pos_ = seg_start_pos(g, rd);
    read_issue(s, rd, true);
}

static bool read_matches(const struct sl_shard_read *rd, const struct sl_batch_header *h)
{
    return rd->from == SL_READ_SEQ ? sl_batch_last_seq(h) >= rd->seq
                                   : h->append_time_ms >= rd->time_ms;
}

static int read_corrupt(struct sl_shard *s, struct sl_shard_read *rd, uint64_t off)
{
    struct segment *g = rd->seg_;
    if (sl_log_ratelimit_ok(&s->rl)) {
        sl_error("storage",
                 "%s: segment %" PRIu64 ": corrupt batch at offset %" PRIu64
                 "; not served",
                 s->dir, g->base_seq, rd->pos_ + off);
    }
    return SL_ECORRUPT;
}

/* Collects whole verified batches from buf[off, got) into buf[0, len). */
static int read_collect(struct sl_shard *s, struct sl_shard_read *rd, uint32_t off, uint32_t got)
{
    uint32_t o = off, total = 0;
    uint64_t expect = 0;
    while (o < got) {
        struct sl_batch_header h;
        int rc = sl_batch_peek(rd->buf + o, got - o, &h);
        if (rc == SL_EAGAIN || (rc == SL_OK && h.length > got - o)) {
            break;
        }
        if (rc != SL_OK || sl_batch_verify(rd->buf + o, &h) != SL_OK ||
            (total > 0 && h.base_seq != expect)) {
            if (total > 0) {
                break; /* serve the good prefix; the next read reports it */
            }
            return read_corrupt(s, rd, o);
        }
        if (total > 0 && total + h.length > rd->max_bytes) {
            break;
        }
        total += h.length;
        o += h.length;
        expect = sl_batch_last_seq(&h) + 1;
        rd->batch_count++;
        rd->next_seq = expect;
    }
    SL_ASSERT(total > 0);
    memmove(rd->buf, rd->buf + off, total);
    rd->len = total;
    return SL_OK;
}

static void read_done(struct sl_io_op *op, int res)
{
    struct sl_shard_read *rd = sl_container_of(op, struct sl_shard_read, op_);
    struct sl_shard *s = rd->shard_;
    s->ops--;
    if (res < 0) {
        read_finish(rd, sl_err_from_errno(-res), false);
        return;
    }
    if (res > 0 && rd->retries_ + (uint32_t)res < rd->want_) {
        /* A short read: read the rest (retries_ counts the bytes so far). */
        rd->retries_ += (uint32_t)res;
        s->ops++;
        sl_ring_read(s->ring, &rd->op_, ((struct segment *)rd->seg_)->log_fd,
                     rd->buf + rd->retries_, rd->want_ - rd->retries_, rd->pos_ + rd->retries_);
        return;
    }
    uint32_t got = rd->retries_ + (uint32_t)res;
    rd->retries_ = 0;
    if (got == 0) {
        /* the file is shorter than the index and the visible end say */
        read_finish(rd, read_corrupt(s, rd, 0), false);
        return;
    }
    uint32_t off = 0;
    bool have_expect = false;
    uint64_t expect = 0;
    while (off < got) {
        struct sl_batch_header h;
        int rc = sl_batch_peek(rd->buf + off, got - off, &h);
        if (rc == SL_EAGAIN) {
            break; /* header cut by the buffer end: read on from here */
        }
        if (rc != SL_OK || (have_expect && h.base_seq != expect)) {
            read_finish(rd, read_corrupt(s, rd, off), false);
            return;
        }
        if (!read_matches(rd, &h)) {
            off += h.length; /* skipped on its (stamp-checked) header alone */
            expect = sl_batch_last_seq(&h) + 1;
            have_expect = true;
            continue;
        }
        if (h.length > got - off) {
            if (h.length > rd->buf_cap) {
                rd->need_bytes = h.length;
                read_finish(rd, SL_ETOOBIG, false);
                return;
            }
            break; /* the wanted batch is cut: read again from its start */
        }
        read_finish(rd, read_collect(s, rd, off, got), false);
        return;
    }
    if (off == 0) {
        /* No progress: a batch runs past the visible end of the segment. */
        read_finish(rd, read_corrupt(s, rd, 0), false);
        return;
    }
    rd->pos_ += off;
    read_issue(s, rd, false);
}

int sl_shard_time_near_seq(struct sl_shard *s, uint64_t seq, uint64_t *time_ms)
{
    if (seq < s->segs[0]->base_seq) {
        return SL_ETRIMMED;
    }
    if (seq >= s->visible_seq) {
        return seq == s->visible_seq ? SL_ENOTFOUND : SL_EINVAL;
    }
    struct segment *g = s->segs[seg_find_seq(s, seq)];
    int rc = g->writing ? SL_OK : seg_load(s, g);
    if (rc != SL_OK) {
        return rc;
    }
    struct sl_shard_read probe = {.from = SL_READ_SEQ, .seq = seq};
    uint32_t lo = idx_below_pos(g, seg_start_pos(g, &probe)); /* the entry at that pos */
    if (lo >= g->idx_count) {
        return SL_ENOTFOUND;
    }
    *time_ms = g->idx[lo].time_ms;
    return SL_OK;
}

int sl_shard_seq_near_tail_bytes(struct sl_shard *s, uint64_t bytes, uint64_t *seq)
{
    *seq = s->seg_count > 0 ? s->segs[0]->base_seq : 0;
    uint64_t remaining = bytes;
    for (uint32_t i = s->seg_count; i > 0; i--) {
        struct segment *g = s->segs[i - 1];
        if (g->bytes < remaining) {
            remaining -= g->bytes;
            *seq = g->base_seq;
            continue;
        }
        uint64_t target = g->bytes - remaining;
        int rc = g->writing ? SL_OK : seg_load(s, g);
        if (rc != SL_OK) {
            return rc;
        }
        /* The last index entry at or before target: a batch boundary. */
        uint32_t n = idx_below_pos(g, target + 1);
        *seq = n > 0 ? g->idx[n - 1].seq : g->base_seq;
        return SL_OK;
    }
    return SL_OK;
}

/* ------------------------------------------------------------------ */
/* retention                                                           */

static int unlink_segment_files(struct sl_shard *s, uint64_t base)
{
    char name[64];
    seg_name(name, sizeof(name), base, "log");
    if (sl_unlinkat(s->dir_fd, name, 0) != 0 && errno != ENOENT) {
        return sl_err_from_errno(errno);
    }
    seg_name(name, sizeof(name), base, "idx");
    if (sl_unlinkat(s->dir_fd, name, 0) != 0 && errno != ENOENT) {
        return sl_err_from_errno(errno);
    }
    return SL_OK;
}

void sl_shard_set_retention(struct sl_shard *s, uint64_t retention_ms, uint64_t retention_bytes)
{
    SL_ASSERT(retention_ms >= 1 && retention_ms <= SL_RETENTION_MS_MAX);
    s->cfg.retention_ms = retention_ms;
    s->cfg.retention_bytes = retention_bytes;
}

uint32_t sl_shard_retention_run(struct sl_shard *s)
{
    uint64_t t = now_ms(s);
    uint64_t total = 0;
    for (uint32_t i = 0; i < s->seg_count; i++) {
        total += s->segs[i]->bytes;
    }
    uint32_t deleted = 0;
    while (s->seg_count - deleted > 1) {
        struct segment *g = s->segs[deleted];
        if (g->writing) {
            break; /* still sealing */
        }
        bool over = s->cfg.retention_bytes > 0 && total > s->cfg.retention_bytes;
        bool expired = false;
        if (!over) {
            if (seg_load(s, g) != SL_OK) {
                break; /* logged by seg_load; retried next run */
            }
            expired = g->last_time_ms + s->cfg.retention_ms <= t;
        }
        if (!over && !expired) {
            break;
        }
        int rc = unlink_segment_files(s, g->base_seq);
        if (rc != SL_OK) {
            sl_error("storage", "%s: retention cannot delete segment %" PRIu64 ": %s", s->dir,
                     g->base_seq, sl_strerror(rc));
            break;
        }
        sl_info("storage", "%s: retention deleted segment %" PRIu64 " (%" PRIu64 " bytes, %s)",
                s->dir, g->base_seq, g->bytes, over ? "over the byte cap" : "expired");
        total -= g->bytes;
        g->deleted = true;
        if (g->refs == 0) {
            if (seg_loaded(g)) {
                s->segs_open--;
            }
            seg_free(g);
        }
        deleted++;
    }
    if (deleted > 0) {
        memmove(s->segs, s->segs + deleted, (s->seg_count - deleted) * sizeof(*s->segs));
        s->seg_count -= deleted;
        /* The unlinks are durable once the directory is; a crash before that
         * only brings a to-be-deleted segment back for the next run. */
        if (sl_fsync_fd(s->dir_fd) != SL_OK) {
            sl_warn("storage", "%s: directory fsync after retention failed", s->dir);
        }
    }
    return deleted;
}

/* ------------------------------------------------------------------ */
/* open and recovery                                                   */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the base sequences of the *.log files in the directory, sorted. */
static int list_segments(struct sl_shard *s, uint64_t **out, uint32_t *count)
{
    int fd = dup(s->dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return sl_err_from_errno(errno);
    }
    uint64_t *v = NULL;
    uint32_t n = 0, cap = 0;
    struct dirent *e;
    int rc = SL_OK;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        if (strlen(nm) != SEG_NAME_DIGITS + 4 || strcmp(nm + SEG_NAME_DIGITS, ".log") != 0) {
            continue;
        }
        uint64_t base = 0;
        bool digits = true;
        for (int i = 0; i < SEG_NAME_DIGITS; i++) {
            digits = digits && nm[i] >= '0' && nm[i] <= '9';
            base = base * 10 + (uint64_t)(nm[i] - '0');
        }
        if (!digits) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            uint64_t *nv = realloc(v, cap * sizeof(*v));
            if (nv == NULL) {
                rc = SL_ENOMEM;
                break;
            }
            v = nv;
        }
        v[n++] = base;
    }
    closedir(d);
    if (rc != SL_OK) {
        free(v);
        return rc;
    }
    if (n > 1) {
        qsort(v, n, sizeof(*v), cmp_u64);
    }
    *out = v;
    *count = n;
    return SL_OK;
}

static int recover_active(struct sl_shard *s, struct segment *g)
{
    char name[64];
    seg_name(name, sizeof(name), g->base_seq, "log");
    g->log_fd = openat(s->dir_fd, name, O_RDWR | O_CLOEXEC);
    seg_name(name, sizeof(name), g->base_seq, "idx");
    g->idx_fd = sl_openat(s->dir_fd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    struct stat st, ist;
    if (g->log_fd < 0 || g->idx_fd < 0 || fstat(g->log_fd, &st) != 0 ||
        fstat(g->idx_fd, &ist) != 0) {
        int rc = sl_err_from_errno(errno);
        sl_error("storage", "%s: cannot open active segment %" PRIu64 ": %s", s->dir,
                 g->base_seq, strerror(errno));
        return rc;
    }
    uint64_t file_size = (uint64_t)st.st_size;
    uint32_t on_disk = (uint32_t)((uint64_t)ist.st_size / sizeof(struct idx_entry));
    /* The entries on disk may be denser than today's interval (it was
     * raised): room for all of them plus a full segment at the new one. */
    g->idx_cap = on_disk + idx_cap_for(&s->cfg, file_size);
    g->idx = calloc(g->idx_cap, sizeof(*g->idx));
    if (g->idx == NULL) {
        return SL_ENOMEM;
    }
    size_t got = 0;
    int rc = sl_pread_full(g->idx_fd, g->idx, (size_t)on_disk * sizeof(*g->idx), 0, &got);
    if (rc != SL_OK) {
        return rc;
    }
    g->idx_count = idx_valid_prefix(g, g->idx, (uint32_t)(got / sizeof(*g->idx)), file_size);
    g->first_time_ms = g->idx_count > 0 ? g->idx[0].time_ms : 0;
    /* Scan from the last index entry; if its batch does not verify (the
     * entry outlived its data), from the one before, and so on. The scan
     * re-adds the entry it starts from. */
    uint64_t end = 0;
    for (;;) {
        uint64_t start = 0, expect = g->base_seq;
        if (g->idx_count > 0) {
            g->idx_count--;
            start = g->idx[g->idx_count].pos;
            expect = g->idx[g->idx_count].seq;
        }
        rc = scan_log(s, g, start, expect, file_size, &end);
        if (rc != SL_OK) {
            return rc;
        }
        if (end > start || g->idx_count == 0) {
            break;
        }
    }
    if (end < file_size) {
        s->stats.recovery_truncated_bytes = file_size - end;
        sl_warn("storage",
                "%s: segment %" PRIu64 ": truncated %" PRIu64 " bytes of torn or corrupt "
                "tail at offset %" PRIu64 " (records up to seq %" PRIu64 " kept)",
                s->dir, g->base_seq, file_size - end, end,
                end > 0 ? g->last_seq : g->base_seq - 1);
        if (sl_ftruncate(g->log_fd, (off_t)end) != 0) {
            return sl_err_from_errno(errno);
        }
    }
    /* Everything kept is made durable now, so every index entry may be
     * written (the rule: entries only point at durable data). */
    if (fdatasync(g->log_fd) != 0) {
        return sl_err_from_errno(errno);
    }
    rc = sl_pwrite_full(g->idx_fd, g->idx, (size_t)g->idx_count * sizeof(*g->idx), 0);
    if (rc == SL_OK && sl_ftruncate(g->idx_fd, (off_t)g->idx_count * (off_t)sizeof(*g->idx)) != 0) {
        rc = sl_err_from_errno(errno);
    }
    if (rc != SL_OK) {
        return rc;
    }
    g->idx_written = g->idx_count;
    /* Recovery verified only the tail; what lies before the last entry was
     * trusted. Index the first new batch, so that it stays reachable even
     * if an older batch in the same interval turns out damaged on read. */
    g->index_next = true;
    g->bytes = g->written_pos = g->synced_pos = g->visible_pos = end;
    g->writing = true;
    s->writing_count++;
    if (end == 0) {
        g->first_time_ms = g->last_time_ms = 0;
    }
    s->next_seq = end > 0 ? g->last_seq + 1 : g->base_seq;
    s->last_append_ms = g->last_time_ms;
    return SL_OK;
}

static int shard_load(struct sl_shard *s)
{
    uint64_t *bases = NULL;
    uint32_t n = 0;
    int rc = list_segments(s, &bases, &n);
    if (rc != SL_OK) {
        return rc;
    }
    for (uint32_t i = 0; i < n && rc == SL_OK; i++) {
        struct segment *g = seg_new(s, bases[i]);
        if (g == NULL) {
            rc = SL_ENOMEM;
            break;
        }
        rc = segs_push(s, g);
        if (rc != SL_OK) {
            seg_free(g);
            break;
        }
        if (i + 1 < n) {
            char name[64];
            struct stat st;
            seg_name(name, sizeof(name), bases[i], "log");
            if (fstatat(s->dir_fd, name, &st, 0) != 0) {
                rc = sl_err_from_errno(errno);
            } else if (st.st_size == 0 || bases[i + 1] <= bases[i]) {
                sl_error("storage", "%s: sealed segment %s is empty or out of order", s->dir,
                         name);
                rc = SL_ECORRUPT;
            }
            g->bytes = (uint64_t)st.st_size;
        }
    }
    free(bases);
    if (rc != SL_OK) {
        return rc;
    }
    if (s->seg_count == 0) {
        struct segment *g = seg_new(s, 0);
        if (g == NULL) {
            return SL_ENOMEM;
        }
        rc = segs_push(s, g);
        if (rc == SL_OK) {
            rc = seg_start_writing(s, g);
        }
        if (rc == SL_OK) {
            rc = seg_create_files(s, g);
        }
        if (rc != SL_OK) {
            return rc;
        }
        rc = sl_fsync_fd(s->dir_fd);
        s->dir_synced_gen = s->dir_gen;
        s->next_seq = 0;
        return rc;
    }
    return recover_active(s, active(s));
}

int sl_shard_open(struct sl_ring *ring, const char *dir, const struct sl_shard_config *cfg,
                  struct sl_shard **out)
{
    char why[128];
    int rc = sl_shard_config_check(cfg, why, sizeof(why));
    if (rc != SL_OK) {
        sl_error("storage", "%s: bad shard config: %s", dir, why);
        return rc;
    }
    struct sl_shard *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return SL_ENOMEM;
    }
    s->ring = ring;
    s->cfg = *cfg;
    s->clock = cfg->clock != NULL ? cfg->clock : &sl_clock_real;
    s->dir_fd = -1;
    s->flush.fn = flush_deferred;
    s->sync_op.cb = sync_done;
    s->dir_op.cb = dir_sync_done;
    s->timer_op.cb = timer_done;
    s->wb_op.cb = wb_done;
    s->rl = (struct sl_log_ratelimit){.interval_ms = 10000, .burst = 5};
    s->dir = strdup(dir);
    s->wbufs = calloc(cfg->write_bufs, sizeof(*s->wbufs));
    s->fifo = calloc(cfg->write_bufs, sizeof(*s->fifo));
    s->pend = calloc(cfg->pending_max, sizeof(*s->pend));
    if (s->dir == NULL || s->wbufs == NULL || s->fifo == NULL || s->pend == NULL) {
        sl_shard_close(s);
        return SL_ENOMEM;
    }
    s->wbuf_free = cfg->write_bufs;
    for (uint32_t i = 0; i < cfg->write_bufs; i++) {
        s->wbufs[i].shard = s;
        s->wbufs[i].op.cb = write_done;
    }
    rc = sl_mkdir_p(dir);
    if (rc == SL_OK) {
        s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        rc = s->dir_fd < 0 ? sl_err_from_errno(errno) : SL_OK;
    }
    if (rc == SL_OK) {
        rc = shard_load(s);
    }
    if (rc != SL_OK) {
        sl_error("storage", "%s: cannot open shard: %s", dir, sl_strerror(rc));
        sl_shard_close(s);
        return rc;
    }
    s->visible_seq = s->next_seq;
    s->visible_time_ms = s->last_append_ms;
    *out = s;
    return SL_OK;
}

/* ------------------------------------------------------------------ */
/* close and stats                                                     */

void sl_shard_close(struct sl_shard *s)
{
    if (s == NULL) {
        return;
    }
    s->closing = true;
    if (s->ring != NULL && s->dir_fd >= 0) {
        flush_deferred(&s->flush);
        /* Run the loop until every op of ours completed and every pending
         * append was acknowledged or failed (closing forces the fsyncs). */
        while (s->ops > 0 || s->pend_len > 0 || s->flush.queued) {
            if (s->ops == 0 && s->pend_len > 0 && s->state != SL_OK) {
                fail_pending_from(s, 0, s->state == SL_ENOSPC ? SL_ENOSPC : SL_EFATAL);
                break;
            }
            sl_ring_run(s->ring, s->ops > 0 ? 1 : 0, 0);
            maybe_sync(s);
        }
    }
    for (uint32_t i = 0; i < s->seg_count; i++) {
        seg_free(s->segs[i]);
    }
    free(s->segs);
    if (s->wbufs != NULL) {
        for (uint32_t i = 0; i < s->cfg.write_bufs; i++) {
            free(s->wbufs[i].data);
            free(s->wbufs[i].big);
        }
    }
    free(s->wbufs);
    free(s->fifo);
    free(s->pend);
    if (s->dir_fd >= 0) {
        close(s->dir_fd);
    }
    free(s->dir);
    free(s);
}

void sl_shard_stats_progress(const struct sl_shard *s, struct sl_shard_stats *st)
{
    st->first_seq = s->seg_count > 0 ? s->segs[0]->base_seq : 0;
    st->next_seq = s->next_seq;
    st->visible_seq = s->visible_seq;
    st->visible_time_ms = s->visible_time_ms;
    st->state = s->state;
    st->fatal_errno = s->fatal_errno;
    st->fatal_what = s->fatal_what;
}

void sl_shard_stats(const struct sl_shard *s, struct sl_shard_stats *st)
{
    *st = s->stats;
    sl_shard_stats_progress(s, st);
    st->bytes = 0;
    for (uint32_t i = 0; i < s->seg_count; i++) {
        st->bytes += s->segs[i]->bytes;
    }
    st->segments = s->seg_count;
    st->segments_open = s->segs_open;
}
