/* fuzz_recovery.c - segment recovery (storage/shard.c sl_shard_open) over
 * arbitrary bytes on disk, then reads, appends and a second recovery.
 *
 * Input: byte 0 = flags, bytes 1-2 = idx_len (u16 LE), then the .log bytes
 * followed by idx_len bytes of .idx (when flag 0x04). They are written as
 * the active segment 00000000000000000000.log/.idx of a fresh shard
 * directory (under /dev/shm when it exists), and then:
 *   1. sl_shard_open recovers it (must succeed: only sealed segments can be
 *      SL_ECORRUPT);
 *   2. everything visible is read by sequence, batch after batch: each read
 *      must return whole batches that pass sl_batch_validate, contiguous in
 *      sequence, starting with the one holding the asked sequence; an empty
 *      OK below the tail is a failure; SL_ECORRUPT is allowed only when an
 *      .idx was given (recovery trusts index entries before the last one);
 *      a read by time (0) is checked the same way;
 *   3. (flag 0x20) batches are appended (up to a roll) and acknowledged; the
 *      shard is closed, reopened, and must show the same tail, the appended
 *      batches readable at their sequences.
 * Flags: 0x01 fix every batch's checksums walking the log by its length
 * fields (fuzz_util.h); 0x02 with 0x01, also renumber base sequences
 * contiguously from 0; 0x04 an .idx part; 0x08 fix the .idx entries' check
 * fields; 0x10 read with max_bytes 1 (one batch per read); 0x40 index
 * interval 4096 instead of 256; 0x80 roll by segment age (the default 7 days:
 * old append times in the input roll at the first append), else by size only.
 */
#include "fuzz_util.h"

#include "common/assert.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/ring.h"
#include "storage/batch.h"
#include "storage/shard.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define READ_CAP (2u << 20)
#define APPEND_MAX 80u

static struct sl_ring g_ring;
static bool g_ring_ok;
static char g_base[64];
static char g_dir[96];
static uint8_t *g_rbuf;
static uint8_t g_app[1024]; /* a valid one-record batch to append */
static size_t g_app_len;

static void cleanup_dir(void)
{
    DIR *d = opendir(g_dir);
    if (d == NULL) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            char p[256];
            snprintf(p, sizeof(p), "%s/%s", g_dir, e->d_name);
            unlink(p);
        }
    }
    closedir(d);
}

static void at_exit(void)
{
    cleanup_dir();
    rmdir(g_dir);
    rmdir(g_base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *lg = getenv("SLUICE_FUZZ_LOG");
    sl_log_set_level(lg != NULL && lg[0] == '1' ? SL_LOG_DEBUG : SL_LOG_OFF);
    char why[256] = "";
    g_ring_ok = sl_ring_probe(why, sizeof(why)) == SL_OK && sl_ring_init(&g_ring, 64) == SL_OK;
    if (!g_ring_ok) {
        fprintf(stderr, "fuzz_recovery: io_uring unavailable (%s): inputs are not run\n", why);
        return 0;
    }
    struct stat st;
    const char *root = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(g_base, sizeof(g_base), "%s/sluice-fuzz-XXXXXX", root);
    SL_ASSERT(mkdtemp(g_base) != NULL);
    snprintf(g_dir, sizeof(g_dir), "%s/shard", g_base);
    atexit(at_exit);
    g_rbuf = malloc(READ_CAP);
    SL_ASSERT(g_rbuf != NULL);
    static uint8_t value[900];
    memset(value, 'v', sizeof(value));
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, g_app, sizeof(g_app));
    struct sl_record r = {.key = "key", .key_len = 3, .value = value, .value_len = sizeof(value),
                          .timestamp_ms = 42};
    SL_ASSERT(sl_batch_builder_add(&b, &r) == SL_OK);
    SL_ASSERT(sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0,
                                      &g_app_len) == SL_OK);
    return 0;
}

static void write_file(const char *name, const uint8_t *p, size_t n)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    SL_ASSERT(fd >= 0);
    SL_ASSERT(n == 0 || write(fd, p, n) == (ssize_t)n);
    close(fd);
}

static void config(struct sl_shard_config *cfg, unsigned flags)
{
    sl_shard_config_default(cfg);
    cfg->segment_bytes = 64u << 10;
    cfg->index_interval_bytes = (flags & 0x40u) ? 4096u : 256u;
    cfg->write_buf_bytes = 16u << 10;
    cfg->write_bufs = 2;
    cfg->pending_max = 64;
    cfg->batch_bytes_max = 64u << 10;
    cfg->open_segments_max = 2;
    cfg->flush = SL_FLUSH_ALWAYS;
    cfg->segment_age_ms = (flags & 0x80u) ? cfg->segment_age_ms : 0;
}

struct rdw {
    struct sl_shard_read rd;
    int done;
    int err;
};

static void read_cb(struct sl_shard_read *rd, int err)
{
    struct rdw *w = sl_container_of(rd, struct rdw, rd);
    w->done++;
    w->err = err;
}

static int run_read(struct sl_shard *s, struct rdw *w, enum sl_read_from from, uint64_t key,
                    uint32_t max_bytes)
{
    memset(w, 0, sizeof(*w));
    w->rd.from = from;
    w->rd.seq = from == SL_READ_SEQ ? key : 0;
    w->rd.time_ms = from == SL_READ_TIME ? key : 0;
    w->rd.buf = g_rbuf;
    w->rd.buf_cap = READ_CAP;
    w->rd.max_bytes = max_bytes;
    w->rd.cb = read_cb;
    sl_shard_read(s, &w->rd);
    SL_ASSERT(w->done == 0); /* never called from inside sl_shard_read */
    while (!w->done) {
        if (g_ring.inflight == 0 && g_ring.deferred_head == NULL) {
            fprintf(stderr, "a read never completed\n");
            abort();
        }
        sl_ring_run(&g_ring, 1, 0);
    }
    SL_ASSERT(w->done == 1);
    return w->err;
}

/* Checks a successful read's batches; returns the sequence after them. */
static uint64_t check_batches(const struct sl_shard_read *rd, bool by_seq, uint64_t seq)
{
    SL_ASSERT(rd->len <= rd->buf_cap);
    uint32_t off = 0, n = 0;
    uint64_t expect = 0;
    while (off < rd->len) {
        struct sl_batch_header h;
        int rc = sl_batch_validate(rd->buf + off, rd->len - off, SL_BATCH_BYTES_MAX, &h);
        if (rc != SL_OK) {
            fprintf(stderr, "a read served a batch that fails verification (%s) at %u\n",
                    sl_strerror(rc), off);
            abort();
        }
        if (n == 0 && by_seq && !(h.base_seq <= seq && seq <= sl_batch_last_seq(&h))) {
            fprintf(stderr, "read of seq %" PRIu64 " started with batch %" PRIu64 "..%" PRIu64
                            "\n", seq, h.base_seq, sl_batch_last_seq(&h));
            abort();
        }
        if (n > 0 && h.base_seq != expect) {
            fprintf(stderr, "a read served batches out of sequence: %" PRIu64 " after %" PRIu64
                            "\n", h.base_seq, expect);
            abort();
        }
        expect = sl_batch_last_seq(&h) + 1;
        off += h.length;
        n++;
    }
    SL_ASSERT(n == rd->batch_count);
    SL_ASSERT(rd->next_seq == expect);
    return expect;
}

/* Reads [first, visible) by sequence. Returns false if a read met SL_ECORRUPT. */
static bool read_all(struct sl_shard *s, uint32_t max_bytes)
{
    struct sl_shard_stats st;
    sl_shard_stats(s, &st);
    uint64_t seq = st.first_seq;
    struct rdw w;
    for (int i = 0; i < 100000 && seq < st.visible_seq; i++) {
        int rc = run_read(s, &w, SL_READ_SEQ, seq, max_bytes);
        if (rc == SL_ECORRUPT) {
            return false;
        }
        if (rc != SL_OK) {
            fprintf(stderr, "read of seq %" PRIu64 " (tail %" PRIu64 ") failed: %s\n", seq,
                    st.visible_seq, sl_strerror(rc));
            abort();
        }
        if (w.rd.len == 0) {
            fprintf(stderr, "read of seq %" PRIu64 " below the tail %" PRIu64
                            " returned nothing (next_seq %" PRIu64 ")\n",
                    seq, st.visible_seq, w.rd.next_seq);
            abort();
        }
        seq = check_batches(&w.rd, true, seq);
        SL_ASSERT(seq <= st.visible_seq);
    }
    /* At the tail: SL_OK, nothing, next_seq = tail. */
    int rc = run_read(s, &w, SL_READ_SEQ, st.visible_seq, max_bytes);
    SL_ASSERT(rc == SL_OK && w.rd.len == 0 && w.rd.next_seq == st.visible_seq);
    return true;
}

struct app {
    int acked;
    int err;
    uint64_t base;
};

static void app_cb(void *ctx, int err, uint64_t base_seq, uint32_t count)
{
    struct app *a = ctx;
    a->acked++;
    a->err = err;
    a->base = base_seq;
    SL_ASSERT(err != SL_OK || count == 1);
}

static struct sl_shard *open_shard(unsigned flags, const char *when)
{
    struct sl_shard_config cfg;
    config(&cfg, flags);
    struct sl_shard *s = NULL;
    int rc = sl_shard_open(&g_ring, g_dir, &cfg, &s);
    if (rc != SL_OK) {
        fprintf(stderr, "sl_shard_open (%s) failed: %s\n", when, sl_strerror(rc));
        abort();
    }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_ring_ok || size < 3) {
        return 0;
    }
    unsigned flags = data[0];
    size_t idx_len = (flags & 0x04u) ? (size_t)(data[1] | data[2] << 8) : 0;
    size_t body = size - 3;
    if (idx_len > body) {
        idx_len = body;
    }
    size_t log_len = body - idx_len;
    uint8_t *log = malloc(log_len + 1);
    uint8_t *idx = malloc(idx_len + 1);
    SL_ASSERT(log != NULL && idx != NULL);
    memcpy(log, data + 3, log_len);
    memcpy(idx, data + 3 + log_len, idx_len);
    if (flags & 0x01u) {
        uint64_t seq = 0;
        for (size_t off = 0; off < log_len;) {
            if ((flags & 0x02u) && log_len - off > SL_BATCH_HEADER_BYTES) {
                fz_set_base_seq(log + off, seq);
            }
            size_t n = fz_fix_batch(log + off, log_len - off, 0);
            if (n == 0) {
                break;
            }
            seq += fz_ld32(log + off + FZ_OFF_COUNT);
            off += n;
        }
    }
    if (flags & 0x08u) {
        for (size_t off = 0; off + sizeof(struct fz_idx_entry) <= idx_len;
             off += sizeof(struct fz_idx_entry)) {
            struct fz_idx_entry e;
            memcpy(&e, idx + off, sizeof(e));
            fz_fix_idx_entry(&e);
            memcpy(idx + off, &e, sizeof(e));
        }
    }
    cleanup_dir();
    SL_ASSERT(sl_mkdir_p(g_dir) == SL_OK);
    write_file("00000000000000000000.log", log, log_len);
    if (flags & 0x04u) {
        write_file("00000000000000000000.idx", idx, idx_len);
    }
    free(log);
    free(idx);

    bool had_idx = (flags & 0x04u) && idx_len >= sizeof(struct fz_idx_entry);
    uint32_t max_bytes = (flags & 0x10u) ? 1u : (64u << 10);
    struct sl_shard *s = open_shard(flags, "recovery");
    struct sl_shard_stats st;
    sl_shard_stats(s, &st);
    SL_ASSERT(st.first_seq == 0 && st.visible_seq == st.next_seq);
    SL_ASSERT(st.recovery_truncated_bytes <= log_len && st.bytes <= log_len);
    SL_ASSERT(st.bytes + st.recovery_truncated_bytes == log_len);
    bool clean = read_all(s, max_bytes);
    if (!clean && !had_idx) {
        fprintf(stderr, "SL_ECORRUPT from a segment recovered without an index: recovery "
                        "kept a batch that does not verify\n");
        abort();
    }
    if (st.visible_seq > 0) {
        struct rdw w;
        int rc = run_read(s, &w, SL_READ_TIME, 0, max_bytes);
        SL_ASSERT(rc == SL_OK || (rc == SL_ECORRUPT && had_idx));
        if (rc == SL_OK && w.rd.len > 0) {
            (void)check_batches(&w.rd, false, 0);
        }
    }

    /* Regression (regress-idx_cap_overflow_after_interval_raise): an index
     * denser than the configured interval once made appends overflow the
     * active segment's index (an SL_ASSERT). */
    if (flags & 0x20u) {
        struct app apps[APPEND_MAX];
        uint32_t n = 0;
        uint64_t next = st.next_seq;
        for (; n < APPEND_MAX; n++) {
            struct sl_shard_stats now;
            sl_shard_stats(s, &now);
            if (now.segments > st.segments) {
                break; /* rolled: enough */
            }
            memset(&apps[n], 0, sizeof(apps[n]));
            int rc;
            while ((rc = sl_shard_append(s, g_app, g_app_len, app_cb, &apps[n])) == SL_EAGAIN) {
                sl_ring_run(&g_ring, 1, 0);
            }
            if (rc != SL_OK) {
                fprintf(stderr, "append %u after recovery failed: %s\n", n, sl_strerror(rc));
                abort();
            }
        }
        for (uint32_t i = 0; i < n; i++) {
            while (!apps[i].acked) {
                SL_ASSERT(g_ring.inflight > 0 || g_ring.deferred_head != NULL);
                sl_ring_run(&g_ring, 1, 0);
            }
            SL_ASSERT(apps[i].err == SL_OK && apps[i].base == next + i);
        }
        sl_shard_stats(s, &st);
        if (getenv("SLUICE_FUZZ_LOG") != NULL) {
            fprintf(stderr, "fuzz_recovery: %u appends from seq %" PRIu64 ", %u segments\n", n,
                    next, st.segments);
        }
        SL_ASSERT(st.visible_seq == next + n);
        sl_shard_close(s);

        s = open_shard(flags, "after appends");
        struct sl_shard_stats st2;
        sl_shard_stats(s, &st2);
        if (st2.visible_seq != st.visible_seq) {
            fprintf(stderr, "reopen after %u appends: tail %" PRIu64 ", was %" PRIu64 "\n", n,
                    st2.visible_seq, st.visible_seq);
            abort();
        }
        for (uint32_t i = 0; i < n; i++) {
            struct rdw w;
            int rc = run_read(s, &w, SL_READ_SEQ, next + i, 1);
            if (rc != SL_OK || w.rd.len != g_app_len) {
                fprintf(stderr, "appended batch %" PRIu64 " not readable after reopen: %s\n",
                        next + i, sl_strerror(rc));
                abort();
            }
            (void)check_batches(&w.rd, true, next + i);
        }
    }
    sl_shard_close(s);
    return 0;
}
