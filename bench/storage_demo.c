/* storage_demo.c - what `make run` runs until the broker exists.
 *
 *   storage_demo [--data DIR] [--records N]      (defaults: ./data, 100000)
 *
 * Probes io_uring, opens (or recovers) the shard DIR/demo/0 with the default
 * configuration, appends N records of 1 KiB in batches of DEMO_BATCH_RECORDS,
 * keeping appends in flight (append until SL_EAGAIN, then run the ring), waits
 * for every acknowledgement, reads the whole shard back from its first
 * sequence in 1 MiB reads and checks every record, then prints a summary.
 * Rerunning appends to the same shard, so the second run also exercises
 * recovery and re-checks the records of earlier runs.
 *
 * Record content is a pure function of the record's sequence number (known at
 * append time: the shard numbers records in append order from next_seq), so
 * every record ever written by this program can be checked on read:
 *   key    "user-NN" (NN = seq % 50) for 3 records in 4, none for the rest
 *   attr   origin = "storage_demo"
 *   value  DEMO_RECORD_BYTES: seq as u64 little-endian, then an xorshift64
 *          stream seeded from seq
 *
 * Units: MB = 10^6 bytes. Single-threaded: the shard, the ring and every
 * callback run on the main thread.
 */
#include "common/clock.h"
#include "common/error.h"
#include "common/ring.h"
#include "storage/batch.h"
#include "storage/shard.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEMO_RECORD_BYTES 1024u
#define DEMO_BATCH_RECORDS 64u /* 64 x ~1 KiB: a typical producer batch (~66 KB) */
#define DEMO_RECORDS_DEFAULT 100000u
#define DEMO_RECORDS_MAX 100000000u /* 100 GB of payload: a sanity bound on --records */
#define DEMO_RING_ENTRIES 256u
#define DEMO_READ_BYTES (1u << 20)
#define DEMO_KEY_MAX 16u
#define DEMO_PATH_MAX 4096u
/* A record costs at most this much in a batch: varints for the body length,
 * timestamp delta, key length, value length and attribute counts (5 bytes
 * each at most), the key, the value and the one attribute. */
#define DEMO_RECORD_ENCODED_MAX (DEMO_RECORD_BYTES + DEMO_KEY_MAX + 64u)
#define DEMO_BATCH_CAP (SL_BATCH_HEADER_BYTES + DEMO_BATCH_RECORDS * DEMO_RECORD_ENCODED_MAX)

static const char demo_attr_key[] = "origin";
static const char demo_attr_value[] = "storage_demo";

struct demo {
    struct sl_ring ring;
    struct sl_shard *shard;
    /* appends */
    uint64_t append_expect_seq; /* base_seq the next acknowledgement must carry */
    uint64_t batches_appended;
    uint64_t batches_acked;
    int append_err; /* first failed acknowledgement */
    /* reads */
    int read_done;
    int read_err;
};

static double now_s(void)
{
    return (double)sl_clock_mono_ns() / 1e9;
}

static uint64_t xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* Fills `value` (DEMO_RECORD_BYTES) with the content of record `seq`. */
static void record_value(uint64_t seq, uint8_t *value)
{
    uint64_t head = htole64(seq);
    memcpy(value, &head, sizeof(head));
    uint64_t state = seq * 0x9E3779B97F4A7C15ull + 1; /* never 0: xorshift's fixed point */
    for (uint32_t off = 8; off < DEMO_RECORD_BYTES; off += 8) {
        uint64_t r = xorshift64(&state);
        memcpy(value + off, &r, sizeof(r));
    }
}

/* Writes the key of record `seq` into `key`; returns its length (0 = none). */
static uint32_t record_key(uint64_t seq, char *key)
{
    if (seq % 4 == 0) {
        return 0;
    }
    return (uint32_t)snprintf(key, DEMO_KEY_MAX, "user-%02u", (unsigned)(seq % 50));
}

static void on_append(void *ctx, int err, uint64_t base_seq, uint32_t count)
{
    struct demo *d = ctx;
    d->batches_acked++;
    if (err != SL_OK) {
        if (d->append_err == SL_OK) {
            d->append_err = err;
        }
        return;
    }
    if (base_seq != d->append_expect_seq && d->append_err == SL_OK) {
        fprintf(stderr, "storage_demo: acknowledgement with base_seq %" PRIu64
                        ", expected %" PRIu64 "\n", base_seq, d->append_expect_seq);
        d->append_err = SL_ECORRUPT;
    }
    d->append_expect_seq = base_seq + count;
}

/* Builds the batch of records [seq, seq + count) into `buf` (DEMO_BATCH_CAP). */
static int build_batch(uint8_t *buf, uint64_t seq, uint32_t count, size_t *len)
{
    static uint8_t value[DEMO_RECORD_BYTES];
    struct sl_attr attr = {
        .key = demo_attr_key,
        .key_len = (uint32_t)strlen(demo_attr_key),
        .value = demo_attr_value,
        .value_len = (uint32_t)strlen(demo_attr_value),
    };
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, buf, DEMO_BATCH_CAP);
    uint64_t ts = sl_clock_wall_ms();
    for (uint32_t i = 0; i < count; i++) {
        char key[DEMO_KEY_MAX];
        record_value(seq + i, value);
        struct sl_record rec = {
            .key = key,
            .key_len = record_key(seq + i, key),
            .value = value,
            .value_len = DEMO_RECORD_BYTES,
            .attrs = &attr,
            .attr_count = 1,
            .timestamp_ms = ts,
        };
        int rc = sl_batch_builder_add(&b, &rec);
        if (rc != SL_OK) {
            return rc;
        }
    }
    return sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, len);
}

/* Appends `records` records starting at sequence `seq0`, keeping appends in
 * flight, and waits for every acknowledgement. */
static int append_all(struct demo *d, uint64_t seq0, uint64_t records)
{
    uint8_t *buf = malloc(DEMO_BATCH_CAP);
    if (buf == NULL) {
        return SL_ENOMEM;
    }
    d->append_expect_seq = seq0;
    int rc = SL_OK;
    for (uint64_t done = 0; done < records && rc == SL_OK && d->append_err == SL_OK;) {
        uint64_t left = records - done;
        uint32_t count = left < DEMO_BATCH_RECORDS ? (uint32_t)left : DEMO_BATCH_RECORDS;
        size_t len = 0;
        rc = build_batch(buf, seq0 + done, count, &len);
        if (rc != SL_OK) {
            break;
        }
        while ((rc = sl_shard_append(d->shard, buf, len, on_append, d)) == SL_EAGAIN) {
            sl_ring_run(&d->ring, 1, 0); /* buffers or pending queue full: let I/O finish */
        }
        if (rc == SL_OK) {
            d->batches_appended++;
            done += count;
        }
    }
    while (d->batches_acked < d->batches_appended) {
        if (d->ring.inflight == 0 && d->ring.deferred_head == NULL) {
            fprintf(stderr, "storage_demo: %" PRIu64 " appends never acknowledged\n",
                    d->batches_appended - d->batches_acked);
            rc = rc == SL_OK ? SL_EFATAL : rc;
            break;
        }
        sl_ring_run(&d->ring, 1, 0);
    }
    free(buf);
    return rc != SL_OK ? rc : d->append_err;
}

static void on_read(struct sl_shard_read *rd, int err)
{
    struct demo *d = rd->ctx;
    d->read_err = err;
    d->read_done = 1;
}

/* Checks one record against the content its sequence number implies. */
static int check_record(const struct sl_record_view *rec)
{
    static uint8_t value[DEMO_RECORD_BYTES];
    char key[DEMO_KEY_MAX];
    uint32_t key_len = record_key(rec->seq, key);
    record_value(rec->seq, value);
    if (rec->value_len != DEMO_RECORD_BYTES || memcmp(rec->value, value, DEMO_RECORD_BYTES) != 0 ||
        rec->key_len != key_len || memcmp(rec->key, key, key_len) != 0 || rec->attr_count != 1) {
        return 0;
    }
    struct sl_attr attr;
    uint32_t pos = 0;
    if (!sl_record_attr_next(rec, &pos, &attr) || attr.key_len != strlen(demo_attr_key) ||
        memcmp(attr.key, demo_attr_key, attr.key_len) != 0 ||
        attr.value_len != strlen(demo_attr_value) ||
        memcmp(attr.value, demo_attr_value, attr.value_len) != 0) {
        return 0;
    }
    return 1;
}

/* Walks the batches of one read result, checking sequence continuity and
 * every record. `*seq` is the next expected sequence. */
static int check_batches(const uint8_t *buf, uint32_t len, uint64_t *seq, uint64_t *records)
{
    uint32_t off = 0;
    while (off < len) {
        struct sl_batch_header h;
        int rc = sl_batch_validate(buf + off, len - off, len - off, &h);
        if (rc != SL_OK) {
            fprintf(stderr, "storage_demo: served batch at seq %" PRIu64 " invalid: %s\n",
                    *seq, sl_strerror(rc));
            return SL_ECORRUPT;
        }
        struct sl_batch_iter it;
        rc = sl_batch_iter_init(&it, buf + off, &h, NULL, NULL, 0);
        struct sl_record_view rec;
        while (rc == SL_OK && (rc = sl_batch_iter_next(&it, &rec)) == SL_OK) {
            if (rec.seq != *seq || !check_record(&rec)) {
                fprintf(stderr, "storage_demo: record seq %" PRIu64 " (expected %" PRIu64
                                ") has wrong content\n", rec.seq, *seq);
                return SL_ECORRUPT;
            }
            (*seq)++;
            (*records)++;
        }
        if (rc != SL_ENOTFOUND) {
            fprintf(stderr, "storage_demo: batch at seq %" PRIu64 " does not decode: %s\n",
                    h.base_seq, sl_strerror(rc));
            return SL_ECORRUPT;
        }
        off += h.length;
    }
    return SL_OK;
}

/* Reads [from, to) back in DEMO_READ_BYTES reads and checks every record. */
static int read_all(struct demo *d, uint64_t from, uint64_t to, uint64_t *records)
{
    uint8_t *buf = malloc(DEMO_READ_BYTES);
    if (buf == NULL) {
        return SL_ENOMEM;
    }
    int rc = SL_OK;
    uint64_t seq = from;
    *records = 0;
    while (seq < to && rc == SL_OK) {
        struct sl_shard_read rd;
        memset(&rd, 0, sizeof(rd));
        rd.from = SL_READ_SEQ;
        rd.seq = seq;
        rd.buf = buf;
        rd.buf_cap = DEMO_READ_BYTES;
        rd.max_bytes = DEMO_READ_BYTES;
        rd.cb = on_read;
        rd.ctx = d;
        d->read_done = 0;
        sl_shard_read(d->shard, &rd);
        if (sl_ring_run_until(&d->ring, &d->read_done) != SL_OK) {
            fprintf(stderr, "storage_demo: read at seq %" PRIu64 " never completed\n", seq);
            rc = SL_EFATAL;
            break;
        }
        if (d->read_err != SL_OK) {
            fprintf(stderr, "storage_demo: read at seq %" PRIu64 ": %s\n", seq,
                    sl_strerror(d->read_err));
            rc = d->read_err;
            break;
        }
        if (rd.len == 0 || rd.next_seq <= seq) {
            fprintf(stderr, "storage_demo: read at seq %" PRIu64 " returned no progress "
                            "(len %u, next_seq %" PRIu64 ") below the tail %" PRIu64 "\n",
                    seq, rd.len, rd.next_seq, to);
            rc = SL_ECORRUPT;
            break;
        }
        rc = check_batches(buf, rd.len, &seq, records);
        if (rc == SL_OK && seq != rd.next_seq) {
            fprintf(stderr, "storage_demo: read next_seq %" PRIu64 " but batches end at %" PRIu64
                            "\n", rd.next_seq, seq);
            rc = SL_ECORRUPT;
        }
    }
    free(buf);
    return rc;
}

/* mkdir -p for the two levels above the shard directory and the shard's own. */
static int make_dirs(const char *data, char *shard_dir, size_t cap)
{
    char path[DEMO_PATH_MAX];
    const char *parts[] = {"", "/demo", "/demo/0"};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        int n = snprintf(path, sizeof(path), "%s%s", data, parts[i]);
        if (n < 0 || (size_t)n >= sizeof(path)) {
            return SL_ETOOBIG;
        }
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "storage_demo: mkdir %s: %s\n", path, strerror(errno));
            return sl_err_from_errno(errno);
        }
    }
    int n = snprintf(shard_dir, cap, "%s", path);
    return n < 0 || (size_t)n >= cap ? SL_ETOOBIG : SL_OK;
}

static void usage(void)
{
    fprintf(stderr, "usage: storage_demo [--data DIR] [--records N]\n"
                    "  --data DIR     data directory (default ./data); the shard is DIR/demo/0\n"
                    "  --records N    records of %u bytes to append (default %u)\n",
                    DEMO_RECORD_BYTES, DEMO_RECORDS_DEFAULT);
}

static int parse_args(int argc, char **argv, const char **data, uint64_t *records)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            *data = argv[++i];
        } else if (strcmp(argv[i], "--records") == 0 && i + 1 < argc) {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (errno != 0 || *end != '\0' || v == 0 || v > DEMO_RECORDS_MAX) {
                fprintf(stderr, "storage_demo: --records must be 1..%u\n", DEMO_RECORDS_MAX);
                return 0;
            }
            *records = v;
        } else {
            usage();
            return 0;
        }
    }
    return 1;
}

static void print_summary(const char *data, const char *shard_dir, uint64_t records,
                          double append_s, uint64_t read_records, double read_s,
                          const struct sl_shard_stats *before, const struct sl_shard_stats *st)
{
    double mb = (double)records * DEMO_RECORD_BYTES / 1e6;
    double read_mb = (double)read_records * DEMO_RECORD_BYTES / 1e6;
    printf("shard %s: %" PRIu64 " records there before this run (seq %" PRIu64 "..%" PRIu64 ")\n",
           shard_dir, before->next_seq - before->first_seq, before->first_seq, before->next_seq);
    if (before->recovery_truncated_bytes > 0) {
        printf("  recovery truncated a torn tail of %" PRIu64 " bytes\n",
               before->recovery_truncated_bytes);
    }
    printf("appended %" PRIu64 " records of %u B (%.1f MB) in %.2f s: %.1f MB/s, %.0f records/s\n",
           records, DEMO_RECORD_BYTES, mb, append_s, mb / append_s, (double)records / append_s);
    printf("read back %" PRIu64 " records (%.1f MB) from seq %" PRIu64 " in %.2f s: %.1f MB/s; "
           "every record checked\n",
           read_records, read_mb, before->first_seq, read_s, read_mb / read_s);
    printf("shard now: first_seq %" PRIu64 ", next_seq %" PRIu64 ", %u segment(s), %.1f MB on "
           "disk, %" PRIu64 " writes, %" PRIu64 " fdatasyncs\n",
           st->first_seq, st->next_seq, st->segments, (double)st->bytes / 1e6, st->writes,
           st->fsyncs);
    printf("data dir: %s (run again to append more; delete it to start over)\n", data);
}

static int run(struct demo *d, const char *data, uint64_t records)
{
    char shard_dir[DEMO_PATH_MAX];
    int rc = make_dirs(data, shard_dir, sizeof(shard_dir));
    if (rc != SL_OK) {
        return rc;
    }
    struct sl_shard_config cfg;
    sl_shard_config_default(&cfg);
    rc = sl_shard_open(&d->ring, shard_dir, &cfg, &d->shard);
    if (rc != SL_OK) {
        fprintf(stderr, "storage_demo: open %s: %s\n", shard_dir, sl_strerror(rc));
        return rc;
    }
    struct sl_shard_stats before, st;
    sl_shard_stats(d->shard, &before);

    double t0 = now_s();
    rc = append_all(d, before.next_seq, records);
    double append_s = now_s() - t0;
    if (rc != SL_OK) {
        fprintf(stderr, "storage_demo: append: %s\n", sl_strerror(rc));
        return rc;
    }
    sl_shard_stats(d->shard, &st);
    if (st.next_seq != before.next_seq + records || st.visible_seq != st.next_seq) {
        fprintf(stderr, "storage_demo: after %" PRIu64 " records next_seq is %" PRIu64
                        " (visible %" PRIu64 "), expected %" PRIu64 "\n",
                records, st.next_seq, st.visible_seq, before.next_seq + records);
        return SL_ECORRUPT;
    }

    uint64_t read_records = 0;
    t0 = now_s();
    rc = read_all(d, before.first_seq, st.visible_seq, &read_records);
    double read_s = now_s() - t0;
    if (rc != SL_OK) {
        return rc;
    }
    if (read_records != st.visible_seq - before.first_seq) {
        fprintf(stderr, "storage_demo: read %" PRIu64 " records, expected %" PRIu64 "\n",
                read_records, st.visible_seq - before.first_seq);
        return SL_ECORRUPT;
    }
    sl_shard_stats(d->shard, &st);
    print_summary(data, shard_dir, records, append_s, read_records, read_s, &before, &st);
    return SL_OK;
}

int main(int argc, char **argv)
{
    const char *data = "./data";
    uint64_t records = DEMO_RECORDS_DEFAULT;
    if (!parse_args(argc, argv, &data, &records)) {
        return 2;
    }
    char why[512];
    if (sl_ring_probe(why, sizeof(why)) != SL_OK) {
        fprintf(stderr, "storage_demo: %s\n", why);
        return 1;
    }
    static struct demo d;
    int rc = sl_ring_init(&d.ring, DEMO_RING_ENTRIES);
    if (rc != SL_OK) {
        fprintf(stderr, "storage_demo: io_uring setup: %s\n", sl_strerror(rc));
        return 1;
    }
    rc = run(&d, data, records);
    sl_shard_close(d.shard);
    sl_ring_fini(&d.ring);
    if (rc != SL_OK) {
        fprintf(stderr, "storage_demo: failed: %s\n", sl_errname(rc));
        return 1;
    }
    return 0;
}
