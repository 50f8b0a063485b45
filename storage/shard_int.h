/* shard_int.h - the shard log's private parts, shared by its files:
 *   shard.c          configuration, open and close, stats
 *   shard_segment.c  segments and their indexes: load, unload, evict, create
 *   shard_write.c    the write path: staging, group commit, seal, roll, ENOSPC,
 *                    descriptor exhaustion at a roll
 *   shard_read.c     reads by sequence and by time; header scans (recent, epochs)
 *   shard_retain.c   retention
 *   shard_recover.c  the directory listing and recovery of the active segment
 *   shard_park.c     the descriptor budget: parking idle shards, reopening them
 *   shard_prezero.c  the zeroed run-ahead of the active segment's .log
 *   shard_truncate.c cutting the log back to a batch boundary (a replica's rejoin), and
 *                    the reset: the log emptied, starting at a later sequence
 * Nothing outside storage/shard*.c includes this file.
 *
 * Files in the shard directory (docs/FORMAT.md):
 *   <base-seq, 20 digits>.log   batches, back to back, append-only
 *   <base-seq, 20 digits>.idx   32-byte entries {seq, pos, time_ms, len, check}
 *   reset-<seq, 20 digits>      empty; a reset to seq in progress (shard_truncate.c)
 * One index serves both lookups (by sequence and by append time): entries are
 * sparse (one per index_interval_bytes of log) and both keys grow with the
 * position, so a second file would hold the same points twice.
 *
 * Threading: everything runs on the thread of the shard's ring.
 */
#ifndef SL_SHARD_INT_H
#define SL_SHARD_INT_H

#include "common/assert.h"
#include "common/checksum.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/ring.h"
#include "storage/shard.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <inttypes.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "index entries are stored in host order, which must be little-endian"
#endif

#define SEG_NAME_DIGITS      20
#define RECOVERY_CHUNK_BYTES (1u << 20)
#define WB_CHUNK             (1u << 20) /* INTERVAL: start writeback every this many bytes written */
/* What a shard holds before it takes traffic, and how its memory grows with it: a
 * shard that holds no traffic must cost almost nothing (100,000 on one broker). */
#define IDX_MAX      (UINT32_MAX / 2) /* entries of any index in memory (recovery, rebuild) */
#define IDX_INITIAL  16u              /* entries of a writing segment's index at first */
#define PEND_INITIAL 16u              /* pending acks at first; doubles up to pending_max */
#define WBUF_INITIAL (64u << 10)      /* a staging buffer at first; doubles up to write_buf_bytes */
#define ZERO_CHUNK_MAX (1u << 20)     /* one zero write of the run-ahead, at most (prezero_bytes / 4) */
/* The run-ahead pays where fdatasyncs are small: the size commit it saves is a
 * cost per fdatasync, its zeros a cost per byte. Above this many bytes per data
 * fdatasync (moving average) the commit is a small share of each, and zeros
 * would cost throughput (measured: README, issue 12), so none are written. */
#define ZERO_SYNC_BYTES_MAX (128u << 10)

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
    uint8_t *data; /* the staging buffer (data_cap bytes), allocated on first use */
    uint8_t *big;  /* a one-batch buffer for a batch larger than write_buf_bytes, or NULL */
    uint32_t data_cap;
    uint32_t cap; /* of the buffer being filled (data_cap, or the big one's length) */
    uint32_t len;
    uint32_t head;   /* direct: bytes before the batches (pos % SL_DIO_ALIGN), else 0 */
    uint32_t io_len; /* bytes the write covers: len, or direct head + len + zero padding */
    uint32_t done;   /* of io_len, the bytes the kernel reported written (short writes resume) */
    uint64_t pos;  /* segment offset of the first byte */
    int state;
    int err;     /* errno of a failed write, else 0 */
    bool issued; /* handed to the ring (false: its segment has no file yet) */
    uint64_t submit_ns; /* when wbuf_submit ran (sl_shard_io_times) */
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
    uint64_t bytes;         /* log size (active: including staged batches) */
    uint64_t first_time_ms; /* append time of the first batch (0 = empty/unknown) */
    uint64_t last_time_ms;  /* append time of the last batch (0 = unknown) */
    int log_fd;             /* -1 while a sealed segment is closed */
    int dio_fd;             /* io_mode direct, while writing: O_DIRECT, write-only; else -1 */
    int idx_fd;
    struct idx_entry *idx; /* malloc'd and growable (writing, rebuilt) or mmapped (sealed) */
    uint32_t idx_count;
    uint32_t idx_cap;
    size_t idx_map_len; /* > 0 when idx is an mmap */
    uint32_t refs;      /* reads holding the segment */
    uint64_t lru_tick;
    bool deleted; /* unlinked by retention; freed when refs drops to 0 */
    /* write state: active and sealing segments */
    bool writing;
    uint64_t written_pos;
    uint64_t synced_pos;
    uint64_t wb_pos; /* INTERVAL: writeback started up to here */
    uint64_t visible_pos;
    uint64_t dir_gen;     /* directory fsync generation that covers this file */
    uint32_t idx_written; /* entries written to the .idx file */
    uint32_t idx_partial; /* bytes of entry idx_written written by a short write */
    bool index_next;      /* index the next append (the first after recovery) */
    bool idx_busy;
    int seal;
    uint64_t last_pos; /* the last batch: for the final index entry */
    uint32_t last_len;
    uint64_t last_base;
    uint64_t last_seq;
    struct pending acked_last; /* the newest acknowledged batch (count 0: none) */
    struct sl_io_op idx_op;
    /* Zeroed run-ahead (shard_prezero.c). zero_end: the end of the last zero
     * write submitted, 0 when the file has no zero tail; past every data
     * byte submitted when it was issued. The file may be that long: a seal,
     * a park and a close cut it back to `bytes`. */
    uint64_t zero_end;
    uint64_t zero_gate; /* `bytes` when the files were opened: the run-ahead starts
                         * once the segment took a chunk of traffic since */
    bool zero_off;      /* a zero write found the disk full: none more in this segment */
    bool size_dirty;    /* the seal cut the zero tail: an fdatasync must commit the size */
};

struct sl_shard {
    struct sl_ring *ring;
    struct sl_clock *clock;
    struct sl_shard_config cfg;
    char *dir;
    int dir_fd;
    int state;    /* SL_OK, SL_ENOSPC, SL_EFATAL */
    bool failing; /* a write failed with ENOSPC; rewinding once writes drain */
    /* The active segment has no files: creating them at a roll ran out of
     * descriptors (EMFILE/ENFILE). The next append creates them first. */
    bool files_owed;
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
    /* Batches whose bytes are all in the file (the page cache), durable or not: >=
     * visible_seq. Only an unsynced read (sl_shard_read.unsynced) sees past visible_seq. */
    uint64_t written_seq;
    uint64_t retain_floor; /* sl_shard_set_retention_floor's (SL_RETAIN_FLOOR_NONE: none) */
    uint64_t visible_time_ms;
    uint64_t last_append_ms;
    uint32_t pend_durable; /* pending appends that wait for an fdatasync */
    uint32_t pend_written; /* pending appends, from the oldest, below written_seq */
    sl_shard_listener listener;
    void *listener_ctx;
    sl_shard_listener written_listener;
    void *written_listener_ctx;

    struct wbuf *wbufs;
    uint32_t wbuf_free;
    uint32_t wbuf_size; /* size a staging buffer is taken at: grows with the traffic */
    struct wbuf *filling;
    struct wbuf **fifo; /* in-flight writes in submission (= file) order */
    uint32_t fifo_head;
    uint32_t fifo_len;

    struct pending *pend; /* ring of pend_cap (grows by doubling up to pending_max) */
    uint32_t pend_cap;
    uint32_t pend_head;
    uint32_t pend_len;

    bool sync_busy;
    uint64_t sync_start_ns; /* of the fdatasync in flight (stats.fsync_ns) */
    struct sl_shard_io_times io_last; /* sl_shard_io_times */
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
    bool retain_armed; /* more segments due than a run deletes: retain_op runs the next */
    struct sl_io_op retain_op;
    bool wb_busy; /* INTERVAL: a writeback start is in flight (holds wb_seg) */
    struct segment *wb_seg;
    uint64_t wb_target;
    struct sl_io_op wb_op;
    /* The run-ahead's one op in flight: a zero write over [zero_from,
     * zero_to) of zero_seg, then the fdatasync that commits the size. Data
     * writes into that range wait while the write is in flight (they are
     * staged but not issued: wbuf.issued false). */
    bool zero_busy;
    bool zero_syncing;  /* the op in flight is the fdatasync */
    bool sync_size;     /* the data fdatasync in flight commits a seal's cut (size_dirty) */
    uint64_t sync_bytes_avg; /* bytes per data fdatasync, moving average (1/8 per sync) */
    struct segment *zero_seg;
    uint64_t zero_from;
    uint64_t zero_to;
    uint64_t zero_done; /* bytes of the zero write done (short writes resume) */
    uint64_t zero_keep; /* zero_seg's zero_end before this write (a full disk cuts back to it) */
    struct sl_io_op zero_op;
    /* io_mode direct (shard_direct.c): the block under the staged data end
     * of dio_tail_seg, at dio_tail_off (NULL seg: unknown, read back when
     * needed). One block, allocated at the first unaligned write. */
    uint8_t *dio_tail;
    struct segment *dio_tail_seg;
    uint64_t dio_tail_off;
    /* io_mode direct: the recent-data cache, a ring of cfg.read_cache_bytes
     * holding bytes [rc_start, rc_end) of rc_seg (byte p at rc_buf[p % cap]);
     * rc_end is the staged end at the last submit. NULL seg: empty. */
    uint8_t *rc_buf;
    struct segment *rc_seg;
    uint64_t rc_start;
    uint64_t rc_end;
    int fatal_errno;
    const char *fatal_what;
    struct sl_deferred flush;
    struct sl_log_ratelimit rl;
    struct sl_shard_stats stats;

    /* truncation (shard_truncate.c): one at a time; appends wait (SL_EAGAIN) */
    bool trunc_busy;
    bool trunc_touched; /* the cut in progress changed a file */
    uint64_t trunc_seq; /* the new end asked for (a reset: the new start) */
    bool trunc_reset;   /* the operation is a reset (sl_shard_reset), not a cut */
    sl_truncate_cb trunc_cb;
    void *trunc_ctx;
    struct sl_deferred trunc_defer;
    struct sl_io_op trunc_timer;  /* polls for quiet (counted in ops) */
    bool trunc_cancel_busy;       /* cancelling the INTERVAL timer (it would hold quiet off) */
    struct sl_io_op trunc_cancel; /* (counted in ops) */
    uint32_t trunc_steps;         /* steps done by the cut in progress (unlink, cut, fsync) */
    uint32_t trunc_kill_after;    /* tests: SIGKILL after this many steps (0: never) */

    /* descriptor budget (cfg.cache) */
    bool parked;      /* descriptors closed, index and buffers freed */
    bool in_lru;      /* on cfg.cache's list (unparked, charged) */
    uint32_t charged; /* descriptors charged to the cache */
    bool trim_due;    /* went quiet over the budget: trim from the flush deferral */
    struct sl_shard *lru_prev, *lru_next;
};

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static inline uint64_t now_ms(struct sl_shard *s)
{
    return sl_clock_now_ms(s->clock);
}

static inline void seg_name(char *out, size_t cap, uint64_t base, const char *ext)
{
    snprintf(out, cap, "%0*" PRIu64 ".%s", SEG_NAME_DIGITS, base, ext);
}

static inline struct idx_entry make_entry(uint64_t seq, uint64_t pos, uint64_t time_ms,
                                          uint32_t len)
{
    struct idx_entry e = {.seq = seq, .pos = pos, .time_ms = time_ms, .len = len, .check = 0};
    e.check = sl_checksum32(&e, offsetof(struct idx_entry, check));
    return e;
}

static inline bool entry_ok(const struct idx_entry *e)
{
    return e->check == sl_checksum32(e, offsetof(struct idx_entry, check));
}

static inline bool seg_loaded(const struct segment *g)
{
    return g->log_fd >= 0;
}

static inline struct segment *active(struct sl_shard *s)
{
    SL_ASSERT(s->seg_count > 0);
    return s->segs[s->seg_count - 1];
}

static inline bool seg_dir_synced(const struct sl_shard *s, const struct segment *g)
{
    return g->dir_gen <= s->dir_synced_gen;
}

static inline struct pending *pend_at(struct sl_shard *s, uint32_t i)
{
    return &s->pend[(s->pend_head + i) % s->pend_cap];
}

/* Where the staged batches start (direct: after the head). */
static inline uint8_t *wbuf_bytes(struct wbuf *w)
{
    return (w->big != NULL ? w->big : w->data) + w->head;
}

static inline bool shard_direct(const struct sl_shard *s)
{
    return s->cfg.io_mode == SL_IO_DIRECT;
}

/* The descriptor data and zeros are written through. */
static inline int seg_write_fd(const struct sl_shard *s, const struct segment *g)
{
    return shard_direct(s) ? g->dio_fd : g->log_fd;
}

static inline uint64_t dio_align_up(uint64_t x)
{
    return (x + SL_DIO_ALIGN - 1) / SL_DIO_ALIGN * SL_DIO_ALIGN;
}

static inline uint64_t seg_visible_end(const struct segment *g)
{
    return g->writing ? g->visible_pos : g->bytes;
}

/* shard_segment.c */
uint32_t shard_idx_cap_for(const struct sl_shard_config *cfg, uint64_t bytes);
void shard_seg_free(struct segment *g);
void shard_seg_unload(struct segment *g);
struct segment *shard_seg_new(struct sl_shard *s, uint64_t base);
int shard_scan_log(struct sl_shard *s, struct segment *g, uint64_t pos, uint64_t expect_seq,
                   uint64_t file_size, uint64_t *end_pos);
uint32_t shard_idx_valid_prefix(const struct segment *g, const struct idx_entry *e, uint32_t n,
                                uint64_t file_size);
int shard_seg_load(struct sl_shard *s, struct segment *g);
void shard_evict_cold(struct sl_shard *s, const struct segment *keep);
void shard_seg_release(struct sl_shard *s, struct segment *g);
int shard_segs_push(struct sl_shard *s, struct segment *g);
int shard_seg_start_writing(struct sl_shard *s, struct segment *g);
int shard_seg_create_files(struct sl_shard *s, struct segment *g);
uint32_t shard_seg_find_seq(const struct sl_shard *s, uint64_t seq);
int shard_idx_reserve(struct segment *g, uint32_t max);

/* shard_write.c */
void shard_fatal(struct sl_shard *s, const char *what, int errnum);
void shard_wbufs_issue_waiting(struct sl_shard *s, const struct segment *g);
void shard_fail_pending_from(struct sl_shard *s, uint32_t from, int err);
void shard_write_done(struct sl_io_op *op, int res);
void shard_sync_done(struct sl_io_op *op, int res);
void shard_dir_sync_done(struct sl_io_op *op, int res);
void shard_wb_done(struct sl_io_op *op, int res);
void shard_timer_done(struct sl_io_op *op, int res);
/* Cancels the INTERVAL flush timer when armed (shard_truncate.c): a truncate waiting for the
 * shard to go quiet, and a close, sync at once instead of waiting up to flush_interval_ms. */
void shard_timer_cancel(struct sl_shard *s);
void shard_retain_done(struct sl_io_op *op, int res);
void shard_idx_done(struct sl_io_op *op, int res);
void shard_maybe_sync(struct sl_shard *s);
void shard_flush_deferred(struct sl_deferred *d);
int shard_roll(struct sl_shard *s);

/* shard_prezero.c */
void shard_zero_step(struct sl_shard *s);
void shard_zero_done(struct sl_io_op *op, int res);
bool shard_zero_holds(const struct sl_shard *s, const struct wbuf *w);
int shard_zero_cut(struct sl_shard *s, struct segment *g);

/* shard_direct.c */
/* An aligned block of `bytes` plus 2 * SL_DIO_ALIGN of slack (head and padding). */
void *shard_dio_alloc(size_t bytes);
/* Opens g's O_DIRECT descriptor (g->log_fd open). SL_EUNSUPPORTED, logged
 * with the fix, when the filesystem refuses O_DIRECT. */
int shard_dio_open(struct sl_shard *s, struct segment *g);
void shard_dio_close(struct segment *g);
/* Frees the tail block and the recent-data cache (park, close). */
void shard_dio_free(struct sl_shard *s);
/* Copies g's bytes [pos, pos + len) into `out` when the recent-data cache
 * holds them all; false otherwise. */
bool shard_rc_get(struct sl_shard *s, const struct segment *g, uint64_t pos, uint32_t len,
                  uint8_t *out);
/* At submit: fills w's head, pads its last block, sets io_len, and keeps
 * the block under the new data end. SL_ENOMEM, or a read-back error. */
int shard_dio_prepare(struct sl_shard *s, struct wbuf *w);

/* shard_recover.c */
int shard_recover_load(struct sl_shard *s);
/* The base sequences of the *.log files in the directory, ascending (*out: owned, free it),
 * and the largest sequence a reset marker names (`reset-<seq>`), or UINT64_MAX for none. */
int shard_list_segments(struct sl_shard *s, uint64_t **out, uint32_t *count, uint64_t *reset);

/* shard_truncate.c: completes a reset to `seq` whose marker is durable (from the reset
 * itself, or from recovery finding the marker a crash left): every segment below `seq`
 * removed, `seq`'s .log present, then the marker removed. Errors: the syscalls'. */
#define SHARD_RESET_MARKER "reset-"
int shard_reset_finish(struct sl_shard *s, uint64_t seq);

/* shard_park.c (shard_touch: before any use that needs the shard's files) */
int shard_touch(struct sl_shard *s);
/* `owner`: on the ring's thread (buffers may go to the cache's spares). */
bool shard_park(struct sl_shard *s, bool owner);
void shard_lru_remove(struct sl_shard *s);
uint32_t shard_cache_shed(struct sl_shard *s, uint32_t want);
void shard_settle(struct sl_shard *s);
void shard_cache_trim(struct sl_shard *s);

#endif
