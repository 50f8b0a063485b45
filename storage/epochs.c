/* epochs.c - the leader-epoch cache and its file (epochs.h).
 *
 * File `leader-epochs` (docs/FORMAT.md, little-endian):
 *   0 magic u32 "SLEP" | 4 version u32 (1) | 8 last_led_epoch i32 | 12 n u32 |
 *   16 n x {epoch i32, start_offset i64} | 16+12n XXH3-64 of bytes [0, 16+12n)
 * Exactly 24 + 12n bytes, n <= SL_EPOCHS_MAX. Replaced whole and durably
 * (sl_file_replace): a crash leaves the old file or the new one. The decoder
 * trusts nothing: length against n before anything is read, the checksum,
 * then every invariant of the cache (epochs.h), so what it returns can be
 * handed to the replica, whose cache asserts the same invariants.
 */
#include "storage/epochs.h"

#include "common/assert.h"
#include "common/bytes.h"
#include "common/checksum.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "storage/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

_Static_assert(SL_EPOCHS_FILE_BYTES_MAX == 16 + 256 * 12 + 8, "the file's largest size");
_Static_assert(SL_EPOCHS_MAX <= UINT32_MAX / SL_EPOCHS_ENTRY_BYTES, "n x entry fits a u32");

void sl_epochs_init(struct sl_epochs *c)
{
    c->last_led_epoch = SL_EPOCHS_NONE;
    c->n = 0;
}

void sl_epochs_check(const struct sl_epochs *c)
{
    SL_ASSERT(c->n <= SL_EPOCHS_MAX && c->last_led_epoch >= SL_EPOCHS_NONE);
    for (uint32_t i = 0; i < c->n; i++) {
        SL_ASSERT(c->e[i].epoch >= 0 && c->e[i].start_offset >= 0);
        if (i > 0) {
            SL_ASSERT(c->e[i].epoch > c->e[i - 1].epoch);
            SL_ASSERT(c->e[i].start_offset > c->e[i - 1].start_offset);
        }
    }
}

void sl_epochs_add(struct sl_epochs *c, int32_t epoch, int64_t start)
{
    sl_epochs_check(c);
    SL_ASSERT(epoch >= 0 && start >= 0);
    if (c->n > 0) {
        struct sl_epoch_entry *last = &c->e[c->n - 1];
        SL_ASSERT(epoch >= last->epoch && start >= last->start_offset);
        if (epoch == last->epoch) {
            return;
        }
        if (last->start_offset == start) {
            last->epoch = epoch; /* the previous epoch has no record */
            sl_epochs_check(c);
            return;
        }
    }
    if (c->n == SL_EPOCHS_MAX) {
        memmove(&c->e[0], &c->e[1], (SL_EPOCHS_MAX - 1) * sizeof(c->e[0]));
        c->n--;
    }
    c->e[c->n++] = (struct sl_epoch_entry){.epoch = epoch, .start_offset = start};
    sl_epochs_check(c);
}

void sl_epochs_truncate(struct sl_epochs *c, int64_t end)
{
    sl_epochs_check(c);
    while (c->n > 0 && c->e[c->n - 1].start_offset >= end) {
        c->n--;
    }
    sl_epochs_check(c);
}

size_t sl_epochs_encode(const struct sl_epochs *c, uint8_t *buf, size_t cap)
{
    sl_epochs_check(c);
    size_t body = SL_EPOCHS_HEAD_BYTES + (size_t)c->n * SL_EPOCHS_ENTRY_BYTES;
    SL_ASSERT(cap >= body + 8);
    sl_put_u32(buf, SL_EPOCHS_MAGIC);
    sl_put_u32(buf + 4, SL_EPOCHS_VERSION);
    sl_put_u32(buf + 8, (uint32_t)c->last_led_epoch);
    sl_put_u32(buf + 12, c->n);
    uint8_t *p = buf + SL_EPOCHS_HEAD_BYTES;
    for (uint32_t i = 0; i < c->n; i++, p += SL_EPOCHS_ENTRY_BYTES) {
        sl_put_u32(p, (uint32_t)c->e[i].epoch);
        sl_put_u64(p + 4, (uint64_t)c->e[i].start_offset);
    }
    sl_put_u64(p, sl_checksum64(buf, body));
    SL_ASSERT((size_t)(p + 8 - buf) == body + 8);
    return body + 8;
}

static int bad(char *why, size_t why_len, const char *msg)
{
    snprintf(why, why_len, "%s", msg);
    return SL_ECORRUPT;
}

int sl_epochs_decode(const uint8_t *buf, size_t len, struct sl_epochs *out, char *why,
                     size_t why_len)
{
    if (len < SL_EPOCHS_HEAD_BYTES + 8) {
        return bad(why, why_len, "shorter than its 16-byte header and checksum");
    }
    if (sl_get_u32(buf) != SL_EPOCHS_MAGIC) {
        return bad(why, why_len, "bad magic (not a leader-epochs file)");
    }
    uint32_t version = sl_get_u32(buf + 4);
    if (version > SL_EPOCHS_VERSION) {
        snprintf(why, why_len, "version %u, newer than this broker's %u: run a newer broker",
                 version, SL_EPOCHS_VERSION);
        return SL_EUNSUPPORTED;
    }
    if (version != SL_EPOCHS_VERSION) {
        return bad(why, why_len, "version 0");
    }
    uint32_t n = sl_get_u32(buf + 12);
    if (n > SL_EPOCHS_MAX) {
        return bad(why, why_len, "more entries than SL_EPOCHS_MAX (256)");
    }
    size_t body = SL_EPOCHS_HEAD_BYTES + (size_t)n * SL_EPOCHS_ENTRY_BYTES;
    if (len != body + 8) {
        return bad(why, why_len, "length does not match its entry count (torn or padded)");
    }
    if (sl_get_u64(buf + body) != sl_checksum64(buf, body)) {
        return bad(why, why_len, "checksum mismatch");
    }
    int32_t led = (int32_t)sl_get_u32(buf + 8);
    if (led < SL_EPOCHS_NONE) {
        return bad(why, why_len, "last_led_epoch below -1");
    }
    const uint8_t *p = buf + SL_EPOCHS_HEAD_BYTES;
    for (uint32_t i = 0; i < n; i++, p += SL_EPOCHS_ENTRY_BYTES) {
        int32_t epoch = (int32_t)sl_get_u32(p);
        int64_t start = (int64_t)sl_get_u64(p + 4);
        if (epoch < 0 || start < 0) {
            return bad(why, why_len, "a negative epoch or start offset");
        }
        if (i > 0 && (epoch <= out->e[i - 1].epoch || start <= out->e[i - 1].start_offset)) {
            return bad(why, why_len, "epochs or start offsets not strictly increasing");
        }
        out->e[i] = (struct sl_epoch_entry){.epoch = epoch, .start_offset = start};
    }
    out->last_led_epoch = led;
    out->n = n;
    sl_epochs_check(out);
    return SL_OK;
}

int sl_epochs_save(const char *shard_dir, const struct sl_epochs *c)
{
    uint8_t buf[SL_EPOCHS_FILE_BYTES_MAX];
    size_t len = sl_epochs_encode(c, buf, sizeof(buf));
    char path[PATH_MAX], tmp[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", shard_dir, SL_EPOCHS_FILE) >= (int)sizeof(path) ||
        snprintf(tmp, sizeof(tmp), "%s/%s", shard_dir, SL_EPOCHS_FILE_TMP) >= (int)sizeof(tmp)) {
        return SL_EINVAL;
    }
    const char *step = "write";
    const void *parts[1] = {buf};
    int rc = sl_file_replace(shard_dir, tmp, path, parts, &len, 1, &step);
    if (rc != SL_OK) {
        sl_error("storage", "cannot %s %s: %s", step, path, sl_strerror(rc));
    }
    return rc;
}

int sl_epochs_load(const char *shard_dir, struct sl_epochs *out, char *why, size_t why_len)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", shard_dir, SL_EPOCHS_FILE) >= (int)sizeof(path)) {
        return bad(why, why_len, "path too long");
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = sl_err_from_errno(errno);
        snprintf(why, why_len, "cannot open: %s", strerror(errno));
        return rc;
    }
    /* One byte more than the largest valid file: a longer one is refused
     * without reading it all (bounded memory whatever the disk holds). */
    uint8_t buf[SL_EPOCHS_FILE_BYTES_MAX + 1];
    size_t got = 0;
    int rc = sl_pread_full(fd, buf, sizeof(buf), 0, &got);
    close(fd);
    if (rc != SL_OK) {
        snprintf(why, why_len, "cannot read: %s", sl_strerror(rc));
        return rc;
    }
    if (got > SL_EPOCHS_FILE_BYTES_MAX) {
        return bad(why, why_len, "longer than the largest valid file");
    }
    return sl_epochs_decode(buf, got, out, why, why_len);
}

/* The scan's state: the cache being extended, and the first problem. */
struct epochs_scan {
    struct sl_epochs *c;
    const char *dir;
    bool went_back; /* the log shows an epoch older than the cache's last */
};

static int scan_add(void *ctx, uint32_t epoch, uint64_t start)
{
    struct epochs_scan *sc = ctx;
    struct sl_epochs *c = sc->c;
    if (epoch > INT32_MAX || start > INT64_MAX) {
        sl_error("storage",
                 "%s: the batch at sequence %" PRIu64 " carries leader epoch %" PRIu32
                 ", beyond the largest (2^31 - 1): the log is damaged",
                 sc->dir, start, epoch);
        return SL_ECORRUPT;
    }
    if (c->n > 0 &&
        ((int32_t)epoch < c->e[c->n - 1].epoch || (int64_t)start < c->e[c->n - 1].start_offset)) {
        sc->went_back = true;
        return SL_ECORRUPT; /* the caller decides whose fault it is */
    }
    sl_epochs_add(c, (int32_t)epoch, (int64_t)start);
    return SL_OK;
}

/* The cache from the headers of the whole retained log. */
static int rebuild(struct sl_shard *s, const char *dir, int32_t meta_epoch, struct sl_epochs *out)
{
    struct sl_shard_stats st;
    sl_shard_stats_progress(s, &st);
    sl_epochs_init(out);
    out->last_led_epoch = meta_epoch < SL_EPOCHS_NONE ? SL_EPOCHS_NONE : meta_epoch;
    struct epochs_scan sc = {.c = out, .dir = dir};
    int rc = sl_shard_scan_epochs(s, st.first_seq, scan_add, &sc);
    if (rc != SL_OK && sc.went_back) {
        sl_error("storage",
                 "%s: leader epochs decrease along the log: the log is damaged or was not "
                 "written by one replica's rules; not served",
                 dir);
    }
    return rc;
}

int sl_epochs_recover(struct sl_shard *s, const char *shard_dir, int32_t meta_epoch,
                      struct sl_epochs *out)
{
    char why[160];
    int rc = sl_epochs_load(shard_dir, out, why, sizeof(why));
    if (rc == SL_EUNSUPPORTED) {
        sl_error("storage", "%s/%s: %s", shard_dir, SL_EPOCHS_FILE, why);
        return rc;
    }
    if (rc == SL_ENOTFOUND) {
        struct sl_shard_stats st;
        sl_shard_stats_progress(s, &st);
        if (st.next_seq > 0) { /* (a new replica's empty log has nothing to say: no line) */
            sl_info("storage", "%s: no %s file: rebuilding the epoch cache from the log",
                    shard_dir, SL_EPOCHS_FILE);
        }
        return rebuild(s, shard_dir, meta_epoch, out);
    }
    if (rc != SL_OK) {
        sl_warn("storage", "%s/%s: %s; not used: rebuilding the epoch cache from the log",
                shard_dir, SL_EPOCHS_FILE, why);
        return rebuild(s, shard_dir, meta_epoch, out);
    }
    struct sl_shard_stats st;
    sl_shard_stats_progress(s, &st);
    /* The log may have lost its tail after the file was written (a torn
     * tail, a truncate whose save did not happen): entries starting past
     * the end describe nothing. One starting at the end stays (a leader's
     * epoch before its first record). */
    while (out->n > 0 && (uint64_t)out->e[out->n - 1].start_offset > st.visible_seq) {
        out->n--;
    }
    uint64_t from = out->n > 0 ? (uint64_t)out->e[out->n - 1].start_offset : st.first_seq;
    struct epochs_scan sc = {.c = out, .dir = shard_dir};
    rc = sl_shard_scan_epochs(s, from, scan_add, &sc);
    if (rc != SL_OK && sc.went_back) {
        sl_warn("storage",
                "%s/%s: its last epoch is newer than the log's at that point; not used: "
                "rebuilding the epoch cache from the log",
                shard_dir, SL_EPOCHS_FILE);
        return rebuild(s, shard_dir, meta_epoch, out);
    }
    sl_epochs_check(out);
    return rc;
}
