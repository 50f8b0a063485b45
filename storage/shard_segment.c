/* shard_segment.c - a shard's segments and their sparse indexes: create,
 * load for reading (bounded by open_segments_max, LRU), rebuild a damaged
 * index, find by sequence.
 */
#include "storage/shard_int.h"

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

uint32_t shard_idx_cap_for(const struct sl_shard_config *cfg, uint64_t bytes)
{
    /* Entries are at least index_interval_bytes apart, plus the first and
     * the final one; a segment holds at most max(segment_bytes, one batch)
     * plus what was appended before a roll was noticed. */
    uint64_t span =
        (cfg->segment_bytes > bytes ? cfg->segment_bytes : bytes) + cfg->batch_bytes_max;
    uint64_t n = span / cfg->index_interval_bytes + 3;
    return n > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)n;
}

void shard_seg_unload(struct segment *g)
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
    shard_dio_close(g);
    if (g->log_fd >= 0) {
        close(g->log_fd);
        g->log_fd = -1;
    }
    if (g->idx_fd >= 0) {
        close(g->idx_fd);
        g->idx_fd = -1;
    }
}

void shard_seg_free(struct segment *g)
{
    shard_seg_unload(g);
    free(g);
}

struct segment *shard_seg_new(struct sl_shard *s, uint64_t base)
{
    struct segment *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        return NULL;
    }
    g->shard = s;
    g->base_seq = base;
    g->idx_op.cb = shard_idx_done;
    g->log_fd = -1;
    g->idx_fd = -1;
    g->dio_fd = -1;
    return g;
}

/* Scans a log file from `pos`, appending index entries per the interval rule
 * to g->idx (capacity g->idx_cap), verifying every batch and sequence
 * continuity. Stops at the first invalid or incomplete batch; *end_pos is
 * the offset after the last valid one. Synchronous (start-up and repair). */
int shard_scan_log(struct sl_shard *s, struct segment *g, uint64_t pos, uint64_t expect_seq,
                   uint64_t file_size, uint64_t *end_pos)
{
    /* The hard ceiling, not the configured batch_bytes_max: lowering the
     * setting must never make recovery cut batches stored before. No more
     * than there is to read, though: a start-up scans one short tail per
     * shard, and a fresh megabyte each (zeroed pages, or under ASan a
     * mapping and its shadow) cost 100,000 shards more than their reads. */
    size_t cap = RECOVERY_CHUNK_BYTES;
    if (file_size > pos && file_size - pos < cap) {
        cap = (size_t)(file_size - pos);
    }
    cap = cap < SL_BATCH_HEADER_BYTES ? SL_BATCH_HEADER_BYTES : cap;
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
                if (shard_idx_reserve(g, IDX_MAX) != SL_OK) {
                    free(buf);
                    return SL_ENOMEM;
                }
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
uint32_t shard_idx_valid_prefix(const struct segment *g, const struct idx_entry *e, uint32_t n,
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

/* Rebuilds a sealed segment's index from its log (the .idx was missing or
 * damaged) and rewrites the .idx file. */
static int seg_rebuild_index(struct sl_shard *s, struct segment *g, uint64_t file_size)
{
    sl_warn("storage", "%s: segment %" PRIu64 ": index missing or damaged, rebuilding from log",
            s->dir, g->base_seq);
    g->idx_count = 0;
    uint64_t end = 0;
    int rc = shard_scan_log(s, g, 0, g->base_seq, file_size, &end);
    if (rc != SL_OK) {
        return rc;
    }
    if (end != file_size) {
        sl_error("storage",
                 "%s: sealed segment %" PRIu64 " is corrupt at offset %" PRIu64 " (of %" PRIu64
                 " bytes); its records from there on are not served",
                 s->dir, g->base_seq, end, file_size);
    }
    if (g->idx_count > 0 &&
        g->idx[g->idx_count - 1].pos !=
            g->last_pos) { /* the final entry names the last batch (retention reads its time) */
        if (shard_idx_reserve(g, IDX_MAX) != SL_OK) {
            return SL_ENOMEM;
        }
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
int shard_seg_load(struct sl_shard *s, struct segment *g)
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
        shard_seg_unload(g);
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
            uint32_t valid = shard_idx_valid_prefix(g, e, (uint32_t)n, file_size);
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
            shard_seg_unload(g);
            return rc;
        }
    }
    s->segs_open++;
    shard_evict_cold(s, g); /* not g: its caller is about to take a reference */
    return SL_OK;
}

/* Keeps at most open_segments_max sealed segments loaded (LRU, unheld,
 * never `keep`). */
void shard_evict_cold(struct sl_shard *s, const struct segment *keep)
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
        shard_seg_unload(victim);
        s->segs_open--;
    }
}

void shard_seg_release(struct sl_shard *s, struct segment *g)
{
    SL_ASSERT(g->refs > 0);
    g->refs--;
    if (g->refs == 0 && g->deleted) {
        if (seg_loaded(g)) {
            s->segs_open--;
        }
        shard_seg_free(g);
    } else if (g->refs == 0 && s->segs_open > s->cfg.open_segments_max) {
        shard_evict_cold(s, NULL); /* back under the bound once reads let go */
    }
}

int shard_segs_push(struct sl_shard *s, struct segment *g)
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

/* Makes room for one more entry in a malloc'd index (a writing segment's, or
 * one being rebuilt), doubling it up to `max` entries. The array moves: never
 * call this while an index write points into it (idx_busy). SL_ELIMIT at
 * `max`, SL_ENOMEM. */
int shard_idx_reserve(struct segment *g, uint32_t max)
{
    SL_ASSERT(g->idx_map_len == 0 && !g->idx_busy);
    SL_ASSERT(g->idx_count <= g->idx_cap);
    if (g->idx_count < g->idx_cap) {
        return SL_OK;
    }
    if (g->idx_cap >= max) {
        return SL_ELIMIT;
    }
    uint32_t cap = g->idx_cap == 0 ? IDX_INITIAL : g->idx_cap * 2;
    cap = cap > max ? max : cap;
    struct idx_entry *n = realloc(g->idx, (size_t)cap * sizeof(*n));
    if (n == NULL) {
        return SL_ENOMEM;
    }
    g->idx = n;
    g->idx_cap = cap;
    SL_ASSERT(g->idx_count < g->idx_cap);
    return SL_OK;
}

/* Makes `g` a segment being written. Its in-memory index starts small and
 * grows with the segment (shard_idx_reserve), so an idle shard holds a few
 * hundred bytes of it, not a full segment's worth. */
int shard_seg_start_writing(struct sl_shard *s, struct segment *g)
{
    g->idx_cap = IDX_INITIAL;
    g->idx = malloc((size_t)g->idx_cap * sizeof(*g->idx));
    if (g->idx == NULL) {
        return SL_ENOMEM;
    }
    g->writing = true;
    s->writing_count++;
    g->dir_gen = UINT64_MAX; /* no files yet */
    return SL_OK;
}

/* Creates the .log and .idx files of a segment. The caller arranges the
 * directory fsync (dir_gen) before acking data in it. On failure neither file
 * is left open (a created .log is unlinked). Out of descriptors (EMFILE,
 * ENFILE) it returns SL_ELIMIT without logging: the caller may free some and
 * try again, and says why when it gives up. */
int shard_seg_create_files(struct sl_shard *s, struct segment *g)
{
    char name[64];
    seg_name(name, sizeof(name), g->base_seq, "log");
    g->log_fd = sl_openat(s->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (g->log_fd < 0) {
        int e = errno;
        int rc = sl_err_from_errno(e);
        if (rc != SL_ELIMIT) {
            sl_error("storage", "%s: cannot create %s: %s", s->dir, name, strerror(e));
        }
        return rc;
    }
    seg_name(name, sizeof(name), g->base_seq, "idx");
    g->idx_fd = sl_openat(s->dir_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (g->idx_fd < 0) {
        int e = errno;
        int rc = sl_err_from_errno(e);
        if (rc != SL_ELIMIT) {
            sl_error("storage", "%s: cannot create %s: %s", s->dir, name, strerror(e));
        }
        close(g->log_fd);
        g->log_fd = -1;
        seg_name(name, sizeof(name), g->base_seq, "log");
        (void)sl_unlinkat(s->dir_fd, name, 0);
        return rc;
    }
    if (shard_direct(s)) {
        int rc = shard_dio_open(s, g);
        if (rc != SL_OK) {
            close(g->idx_fd);
            close(g->log_fd);
            g->idx_fd = g->log_fd = -1;
            seg_name(name, sizeof(name), g->base_seq, "idx");
            (void)sl_unlinkat(s->dir_fd, name, 0);
            seg_name(name, sizeof(name), g->base_seq, "log");
            (void)sl_unlinkat(s->dir_fd, name, 0);
            return rc;
        }
    }
    g->dir_gen = ++s->dir_gen;
    return SL_OK;
}

/* Index of the last segment whose base_seq <= seq (segments are sorted). */
uint32_t shard_seg_find_seq(const struct sl_shard *s, uint64_t seq)
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
