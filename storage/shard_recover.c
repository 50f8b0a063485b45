/* shard_recover.c - open-time recovery: the directory listing, and the
 * active segment verified from its last index entry, a torn tail cut.
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

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Parses `digits` SEG_NAME_DIGITS decimal digits; false if any is not one. */
static bool parse_seq(const char *digits, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < SEG_NAME_DIGITS; i++) {
        if (digits[i] < '0' || digits[i] > '9') {
            return false;
        }
        v = v * 10 + (uint64_t)(digits[i] - '0');
    }
    *out = v;
    return true;
}

int shard_list_segments(struct sl_shard *s, uint64_t **out, uint32_t *count, uint64_t *reset)
{
    const size_t mlen = strlen(SHARD_RESET_MARKER);
    *reset = UINT64_MAX;
    int fd = dup(s->dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return sl_err_from_errno(errno);
    }
    /* The duplicate shares the directory's read position with dir_fd: a
     * second listing (after a truncate) would start at the end and find
     * nothing. */
    rewinddir(d);
    uint64_t *v = NULL;
    uint32_t n = 0, cap = 0;
    struct dirent *e;
    int rc = SL_OK;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        uint64_t base = 0;
        if (strlen(nm) == mlen + SEG_NAME_DIGITS && memcmp(nm, SHARD_RESET_MARKER, mlen) == 0 &&
            parse_seq(nm + mlen, &base)) {
            *reset = *reset == UINT64_MAX || base > *reset ? base : *reset;
            continue;
        }
        if (strlen(nm) != SEG_NAME_DIGITS + 4 || strcmp(nm + SEG_NAME_DIGITS, ".log") != 0 ||
            !parse_seq(nm, &base)) {
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

/* Whether the log's bytes [from, to) are all zero: the zeroed run-ahead
 * (shard_prezero.c) past the last batch, which is the clean end of the data
 * and no torn tail. Reads it (at most prezero_bytes and a chunk, as a crash
 * leaves it; a clean close cuts it). */
static int tail_is_zero(struct sl_shard *s, int fd, uint64_t from, uint64_t to, bool *zero)
{
    SL_ASSERT(from <= to);
    *zero = true;
    size_t cap = to - from < RECOVERY_CHUNK_BYTES ? (size_t)(to - from) : RECOVERY_CHUNK_BYTES;
    if (cap == 0) {
        return SL_OK;
    }
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        return SL_ENOMEM;
    }
    int rc = SL_OK;
    for (uint64_t at = from; at < to && *zero;) {
        size_t want = to - at < cap ? (size_t)(to - at) : cap;
        size_t got = 0;
        rc = sl_pread_full(fd, buf, want, at, &got);
        if (rc != SL_OK) {
            break;
        }
        s->stats.recovery_read_bytes += got;
        for (size_t i = 0; i < got && *zero; i++) {
            *zero = buf[i] == 0;
        }
        if (got < want) {
            break; /* the file shrank under us: what was read is what counts */
        }
        at += got;
    }
    free(buf);
    return rc;
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
        sl_error("storage", "%s: cannot open active segment %" PRIu64 ": %s", s->dir, g->base_seq,
                 strerror(errno));
        return rc;
    }
    uint64_t file_size = (uint64_t)st.st_size;
    uint32_t on_disk = (uint32_t)((uint64_t)ist.st_size / sizeof(struct idx_entry));
    /* The entries on disk may be denser than today's interval (it was
     * raised): room for all of them plus a full segment at the new one. */
    g->idx_cap = on_disk + IDX_INITIAL; /* the scan below grows it */
    g->idx = calloc(g->idx_cap, sizeof(*g->idx));
    if (g->idx == NULL) {
        return SL_ENOMEM;
    }
    size_t got = 0;
    int rc = sl_pread_full(g->idx_fd, g->idx, (size_t)on_disk * sizeof(*g->idx), 0, &got);
    if (rc != SL_OK) {
        return rc;
    }
    g->idx_count = shard_idx_valid_prefix(g, g->idx, (uint32_t)(got / sizeof(*g->idx)), file_size);
    /* The scan below changes entries from the last one on only. */
    uint32_t idx_valid = g->idx_count;
    struct idx_entry idx_last = idx_valid > 0 ? g->idx[idx_valid - 1] : (struct idx_entry){0};
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
        rc = shard_scan_log(s, g, start, expect, file_size, &end);
        if (rc != SL_OK) {
            return rc;
        }
        if (end > start || g->idx_count == 0) {
            break;
        }
    }
    bool zero_tail = false;
    if (end < file_size) {
        rc = tail_is_zero(s, g->log_fd, end, file_size, &zero_tail);
        if (rc != SL_OK) {
            return rc;
        }
    }
    if (zero_tail) {
        /* The run-ahead left by a crash: cut quietly (it starts again with
         * traffic), synced below with the rest or, lost, cut again. */
        sl_debug("storage", "%s: segment %" PRIu64 ": cut a zeroed run-ahead of %" PRIu64 " bytes",
                 s->dir, g->base_seq, file_size - end);
        if (sl_ftruncate(g->log_fd, (off_t)end) != 0) {
            return sl_err_from_errno(errno);
        }
    } else if (end < file_size) {
        s->stats.recovery_truncated_bytes = file_size - end;
        sl_warn("storage",
                "%s: segment %" PRIu64 ": truncated %" PRIu64 " bytes of torn or corrupt "
                "tail at offset %" PRIu64 " (records up to seq %" PRIu64 " kept)",
                s->dir, g->base_seq, file_size - end, end, end > 0 ? g->last_seq : g->base_seq - 1);
        if (sl_ftruncate(g->log_fd, (off_t)end) != 0) {
            return sl_err_from_errno(errno);
        }
    }
    /* Everything kept is made durable now (or was, by the caller's syncfs),
     * so every index entry may be written (the rule: entries only point at
     * durable data). A cut tail need not be: scanned again, it is cut again. */
    if (!s->cfg.synced_before_open && fdatasync(g->log_fd) != 0) {
        return sl_err_from_errno(errno);
    }
    /* The .idx is rewritten only when it differs from the entries kept: a
     * clean shard's (every entry valid, none added by the scan) is left as
     * it is. */
    if (g->idx_count != on_disk || idx_valid != on_disk ||
        (on_disk > 0 && memcmp(&g->idx[on_disk - 1], &idx_last, sizeof(idx_last)) != 0)) {
        rc = sl_pwrite_full(g->idx_fd, g->idx, (size_t)g->idx_count * sizeof(*g->idx), 0);
        if (rc == SL_OK &&
            sl_ftruncate(g->idx_fd, (off_t)g->idx_count * (off_t)sizeof(*g->idx)) != 0) {
            rc = sl_err_from_errno(errno);
        }
        if (rc != SL_OK) {
            return rc;
        }
    }
    g->idx_written = g->idx_count;
    /* Recovery verified only the tail; what lies before the last entry was
     * trusted. Index the first new batch, so that it stays reachable even
     * if an older batch in the same interval turns out damaged on read. */
    g->index_next = true;
    if (shard_direct(s)) {
        rc = shard_dio_open(s, g); /* (the block under `end` is read back at the first write) */
        if (rc != SL_OK) {
            return rc;
        }
    }
    g->bytes = g->written_pos = g->synced_pos = g->visible_pos = end;
    g->zero_end = 0;
    g->zero_gate = end;
    g->writing = true;
    s->writing_count++;
    if (end == 0) {
        g->first_time_ms = g->last_time_ms = 0;
    }
    s->next_seq = end > 0 ? g->last_seq + 1 : g->base_seq;
    s->last_append_ms = g->last_time_ms;
    return SL_OK;
}

int shard_recover_load(struct sl_shard *s)
{
    uint64_t *bases = NULL;
    uint32_t n = 0;
    uint64_t reset_seq = UINT64_MAX;
    int rc = shard_list_segments(s, &bases, &n, &reset_seq);
    if (rc == SL_OK && reset_seq != UINT64_MAX) {
        /* A reset was under way (its marker is durable): it is finished now, so the log is
         * the empty one at reset_seq - never what was left of the old one. */
        sl_warn("storage",
                "%s: finishing a reset of the log to sequence %" PRIu64 " that a stop interrupted",
                s->dir, reset_seq);
        free(bases);
        bases = NULL;
        rc = shard_reset_finish(s, reset_seq);
        if (rc == SL_OK) {
            rc = shard_list_segments(s, &bases, &n, &reset_seq);
        }
        /* finished: the marker went last, and no segment below its sequence is left */
        SL_ASSERT(rc != SL_OK || (reset_seq == UINT64_MAX && n >= 1));
    }
    if (rc != SL_OK) {
        free(bases);
        return rc;
    }
    for (uint32_t i = 0; i < n && rc == SL_OK; i++) {
        struct segment *g = shard_seg_new(s, bases[i]);
        if (g == NULL) {
            rc = SL_ENOMEM;
            break;
        }
        rc = shard_segs_push(s, g);
        if (rc != SL_OK) {
            shard_seg_free(g);
            break;
        }
        if (i + 1 < n) {
            char name[64];
            struct stat st;
            seg_name(name, sizeof(name), bases[i], "log");
            if (fstatat(s->dir_fd, name, &st, 0) != 0) {
                rc = sl_err_from_errno(errno);
            } else if (st.st_size == 0 || bases[i + 1] <= bases[i]) {
                sl_error("storage", "%s: sealed segment %s is empty or out of order", s->dir, name);
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
        struct segment *g = shard_seg_new(s, 0);
        if (g == NULL) {
            return SL_ENOMEM;
        }
        rc = shard_segs_push(s, g);
        if (rc == SL_OK) {
            rc = shard_seg_start_writing(s, g);
        }
        /* A new (or never written) shard makes its first segment's files at
         * its first append (files_owed): a stream of 8 shards is created
         * without 16 files and 8 directory fsyncs, and an empty directory is
         * what recovery finds either way. */
        s->files_owed = true;
        s->next_seq = 0;
        return rc;
    }
    return recover_active(s, active(s));
}
