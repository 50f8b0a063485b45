/* log_fx.h - a small shard fixture for the truncate and leader-epoch tests
 * (test_shard_truncate, test_epochs, crash/truncate_shard): one ring, one
 * shard in a temporary directory, batches whose records derive from their
 * first sequence, appends and reads waited for by running the ring.
 */
#ifndef SL_TEST_LOG_FX_H
#define SL_TEST_LOG_FX_H

#include "common/error.h"
#include "common/ring.h"
#include "storage/batch.h"
#include "storage/shard.h"

#include <ftw.h>
#include <limits.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LFX_BATCH_CAP 4096u
#define LFX_READ_CAP  (1u << 20)

#define LFX_VALUE_BYTES 200u /* a few batches fill a 4 KiB segment */

/* The value of record `seq`: "record-<seq>" padded to LFX_VALUE_BYTES. */
static inline int lfx_value(char *v, uint64_t seq)
{
    memset(v, 'x', LFX_VALUE_BYTES);
    int n = snprintf(v, LFX_VALUE_BYTES, "record-%llu", (unsigned long long)seq);
    v[n] = '.';
    return (int)LFX_VALUE_BYTES;
}

struct lfx {
    char root[1024];
    char dir[PATH_MAX];
    struct sl_ring ring;
    struct sl_shard_config cfg;
    struct sl_shard *s;
};

static inline struct sl_shard_config lfx_cfg_small(void)
{
    struct sl_shard_config cfg;
    sl_shard_config_default(&cfg);
    cfg.segment_bytes = 4096; /* a segment every few batches */
    cfg.index_interval_bytes = 256;
    cfg.prezero_bytes = 0;
    return cfg;
}

static inline int lfx_rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static inline void lfx_rm_rf(const char *path)
{
    nftw(path, lfx_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline int lfx_open(struct lfx *f)
{
    if (getenv("SL_TEST_SHARD_DIRECT") != NULL) {
        f->cfg.io_mode = SL_IO_DIRECT; /* the *_direct registrations (tests/CMakeLists.txt) */
    }
    return sl_shard_open(&f->ring, f->dir, &f->cfg, &f->s);
}

/* A fresh directory and ring; SL_OK or an error. */
static inline int lfx_init(struct lfx *f, const struct sl_shard_config *cfg)
{
    memset(f, 0, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    snprintf(f->root, sizeof(f->root), "%s/sl-logfx-XXXXXX", tmp != NULL ? tmp : "/var/tmp");
    if (mkdtemp(f->root) == NULL) {
        return SL_ESYS;
    }
    snprintf(f->dir, sizeof(f->dir), "%s/shard", f->root);
    f->cfg = *cfg;
    int rc = sl_ring_init(&f->ring, 64);
    return rc != SL_OK ? rc : lfx_open(f);
}

static inline void lfx_close(struct lfx *f)
{
    sl_shard_close(f->s);
    f->s = NULL;
}

static inline void lfx_fini(struct lfx *f)
{
    lfx_close(f);
    sl_ring_fini(&f->ring);
    if (f->root[0] != '\0') {
        lfx_rm_rf(f->root);
    }
}

/* Batch of `count` records for sequence `base`: record i's value names
 * base + i, so any batch read back can be checked against its sequence. */
static inline size_t lfx_batch(uint8_t *buf, uint64_t base, uint32_t count)
{
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, buf, LFX_BATCH_CAP);
    for (uint32_t i = 0; i < count; i++) {
        char v[LFX_VALUE_BYTES];
        int n = lfx_value(v, base + i);
        struct sl_record r = {.value = v, .value_len = (uint32_t)n, .timestamp_ms = 1000 + i};
        if (sl_batch_builder_add(&b, &r) != SL_OK) {
            return 0;
        }
    }
    size_t len = 0;
    if (sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, &len) != SL_OK) {
        return 0;
    }
    return len;
}

struct lfx_wait {
    int done;
    int err;
    uint64_t seq;
};

static inline void lfx_append_cb(void *ctx, int err, uint64_t base, uint32_t count)
{
    (void)count;
    struct lfx_wait *w = ctx;
    w->done++;
    w->err = err;
    w->seq = base;
}

static inline void lfx_trunc_cb(void *ctx, int err, uint64_t end)
{
    struct lfx_wait *w = ctx;
    w->done++;
    w->err = err;
    w->seq = end;
}

static inline void lfx_run_until(struct lfx *f, const struct lfx_wait *w)
{
    for (int i = 0; i < 100000 && w->done == 0; i++) {
        sl_ring_run(&f->ring, 1, 10ull * 1000 * 1000);
    }
}

/* Appends one batch of `count` records (the shard's next sequence in its
 * values) with options `o` (NULL: none), waits; the ack's error, *base set. */
static inline int lfx_append(struct lfx *f, uint32_t count, const struct sl_append_opts *o,
                             uint64_t *base)
{
    static uint8_t buf[LFX_BATCH_CAP];
    struct sl_shard_stats st;
    sl_shard_stats_progress(f->s, &st);
    size_t len = lfx_batch(buf, st.next_seq, count);
    if (len == 0) {
        return SL_EINVAL;
    }
    struct lfx_wait w = {0};
    struct sl_append_opts none = {0};
    int rc = sl_shard_append_opt(f->s, buf, len, o != NULL ? o : &none, lfx_append_cb, &w);
    if (rc != SL_OK) {
        return rc;
    }
    lfx_run_until(f, &w);
    if (base != NULL) {
        *base = w.seq;
    }
    return w.done == 1 ? w.err : SL_EIO;
}

/* Truncates to `seq` (or, with `reset`, empties the log starting it at `seq`) and waits:
 * the call's error, else the callback's; *end = the new end. */
static inline int lfx_cut(struct lfx *f, uint64_t seq, bool reset, uint64_t *end)
{
    struct lfx_wait w = {0};
    int rc = reset ? sl_shard_reset(f->s, seq, lfx_trunc_cb, &w)
                   : sl_shard_truncate(f->s, seq, lfx_trunc_cb, &w);
    if (rc != SL_OK) {
        return rc;
    }
    lfx_run_until(f, &w);
    if (end != NULL) {
        *end = w.seq;
    }
    return w.done == 1 ? w.err : SL_EIO;
}

static inline int lfx_truncate(struct lfx *f, uint64_t seq, uint64_t *end)
{
    return lfx_cut(f, seq, false, end);
}

static inline int lfx_reset(struct lfx *f, uint64_t seq, uint64_t *end)
{
    return lfx_cut(f, seq, true, end);
}

struct lfx_read {
    struct sl_shard_read rd;
    struct lfx_wait w;
};

static inline void lfx_read_cb(struct sl_shard_read *rd, int err)
{
    struct lfx_read *r = (struct lfx_read *)rd;
    r->w.done++;
    r->w.err = err;
}

/* Starts a read from `seq` into `buf` (LFX_READ_CAP) - an unsynced one with `unsynced` -
 * completing into r->w (lfx_run_until waits for it). */
static inline void lfx_read_start(struct lfx *f, uint64_t seq, uint8_t *buf, bool unsynced,
                                  struct lfx_read *r)
{
    memset(r, 0, sizeof(*r));
    r->rd.from = SL_READ_SEQ;
    r->rd.seq = seq;
    r->rd.buf = buf;
    r->rd.buf_cap = LFX_READ_CAP;
    r->rd.max_bytes = LFX_READ_CAP;
    r->rd.unsynced = unsynced;
    r->rd.cb = lfx_read_cb;
    sl_shard_read(f->s, &r->rd);
}

/* Reads from `seq` into `buf` (LFX_READ_CAP): the error; rd filled. */
static inline int lfx_read(struct lfx *f, uint64_t seq, uint8_t *buf, struct sl_shard_read *out)
{
    struct lfx_read r;
    lfx_read_start(f, seq, buf, false, &r);
    lfx_run_until(f, &r.w);
    *out = r.rd;
    return r.w.done == 1 ? r.w.err : SL_EIO;
}

/* Files in dir whose names end with `ext` (4 characters: ".log") or, with `prefix`, begin
 * with it. */
static inline int lfx_count_names(const char *dir, const char *ext, const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        n += prefix != NULL ? strncmp(e->d_name, prefix, strlen(prefix)) == 0
                            : l > 4 && strcmp(e->d_name + l - 4, ext) == 0;
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

/* Reads the whole log from `first` to its end and checks every batch: valid,
 * contiguous, each record's value naming its sequence. Returns the end
 * sequence through *end, and SL_OK or the first problem (SL_ECORRUPT for a
 * content mismatch). `epochs` (may be NULL, `cap` entries) receives the
 * leader epoch of each batch in order, *n_batches their count. */
static inline int lfx_check_log(struct lfx *f, uint64_t first, uint64_t *end, uint32_t *epochs,
                                uint32_t cap, uint32_t *n_batches)
{
    static uint8_t buf[LFX_READ_CAP];
    uint64_t seq = first;
    uint32_t nb = 0;
    for (;;) {
        struct sl_shard_read rd;
        int rc = lfx_read(f, seq, buf, &rd);
        if (rc != SL_OK) {
            return rc;
        }
        if (rd.len == 0) {
            break;
        }
        for (uint32_t off = 0; off < rd.len;) {
            struct sl_batch_header h;
            if (sl_batch_validate(buf + off, rd.len - off, rd.len - off, &h) != SL_OK ||
                h.base_seq != seq) {
                return SL_ECORRUPT;
            }
            struct sl_batch_iter it;
            if (sl_batch_iter_init(&it, buf + off, &h, NULL, NULL, 0) != SL_OK) {
                return SL_ECORRUPT;
            }
            struct sl_record_view v;
            for (uint32_t i = 0; i < h.record_count; i++) {
                char want[LFX_VALUE_BYTES];
                int n = lfx_value(want, h.base_seq + i);
                if (sl_batch_iter_next(&it, &v) != SL_OK || v.value_len != (uint32_t)n ||
                    memcmp(v.value, want, (size_t)n) != 0) {
                    return SL_ECORRUPT;
                }
            }
            if (epochs != NULL && nb < cap) {
                epochs[nb] = h.leader_epoch;
            }
            nb++;
            seq += h.record_count;
            off += h.length;
        }
    }
    *end = seq;
    if (n_batches != NULL) {
        *n_batches = nb;
    }
    return SL_OK;
}

#endif
