/* reshard_client.c - libsluice across resharding (#16) on the real broker: a producer keeps
 * writing and a consumer keeps reading while the stream is split, resharded and merged.
 *
 * Covers: the library producer (zstd batches, durable acks, 1,000 keys plus records without
 * a key, each record carrying its number in its value and in an attribute) writes without
 * pause while the stream goes 4 open shards -> split of shard 1 (5) -> reshard to 8 -> merge
 * of two adjacent shards (7) -> reshard to 3, through sluice_stream_split / _reshard /
 * _merge; every delivery report is OK (nothing failed, records were re-routed off closed
 * shards: stats.rerouted > 0) and names the (shard, sequence) where the record is read. A
 * consumer reading the whole stream from the start throughout, then a fresh one reading it
 * all again afterwards, each check: every acknowledged record read exactly once, with its
 * key, value and attribute; each key's records in production order; each shard's sequences
 * in order without gaps; and no record of a child read before every record of each of its
 * parents (the lineage from the final description). A consumer starting at a time between
 * two changes reads, per key, an unbroken tail of the key's records. An ACK_NONE producer
 * learns a split by describing again: what it sends 1.5 s after is all stored. A producer
 * rides over kill -9s right after a split and a reshard: every acknowledged record read
 * once where its delivery said, copies only where a retry could leave one. The CLI: `stream
 * split`, `merge`, `reshard` (text and --json) and `stream describe` showing closed shards with
 * parents and children; usage errors exit 2, refusals exit 1 naming the cause.
 *
 * Skipped (exit 77) when the broker cannot reshard (UNSUPPORTED: one that predates #16).
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"
#include "common/partition.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SLUICE_CLI_PATH
#error "SLUICE_CLI_PATH must be defined (tests/CMakeLists.txt)"
#endif

#define KEYS          1000u
#define RECORDS_MAX   400000u /* the producer stops here at the latest */
#define UNKEYED_EVERY 97u     /* record r has no key when r % 97 == 96 */
#define SHARDS_MAX    64u
#define STEP_MS       (400u * IT_SLOWDOWN) /* producing between two changes */
#define DRAIN_MS      (60000u * IT_SLOWDOWN)

static struct it_broker broker;
static const char *STREAM = "rs";

/* ---- the producer's side ---- */

static uint32_t *ack_shard; /* per record: the shard its delivery named, UINT32_MAX before */
static uint64_t *ack_seq;
static uint64_t *sent_us, *ack_us; /* per record: monotonic times of produce and delivery */
static atomic_uint_fast64_t acked_ok, acked_err;
static atomic_int first_err;
static atomic_uint produced; /* records handed to sluice_produce */
static atomic_int stop_producing;

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint32_t key_of(uint32_t r, char *out)
{
    if (r % UNKEYED_EVERY == UNKEYED_EVERY - 1) {
        out[0] = '\0';
        return 0;
    }
    return (uint32_t)snprintf(out, 16, "key-%04u", r % KEYS);
}

static uint32_t value_of(uint32_t r, char *out, size_t cap)
{
    char key[16];
    uint32_t kl = key_of(r, key);
    return (uint32_t)snprintf(out, cap, "%s#%u#%s", kl > 0 ? key : "nokey", r,
                              "some filler so that batches compress");
}

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    uint32_t r = (uint32_t)(uintptr_t)ctx;
    if (err != SL_OK) {
        int zero = 0;
        atomic_compare_exchange_strong(&first_err, &zero, err);
        atomic_fetch_add(&acked_err, 1);
        return;
    }
    ack_seq[r] = seq;
    ack_shard[r] = shard;
    ack_us[r] = mono_us();
    atomic_fetch_add(&acked_ok, 1);
}

static void *producer_main(void *arg)
{
    sluice_producer *p = arg;
    char key[16], value[96], attr[16];
    for (uint32_t r = 0; r < RECORDS_MAX && !atomic_load(&stop_producing); r++) {
        uint32_t kl = key_of(r, key);
        uint32_t vl = value_of(r, value, sizeof(value));
        int al = snprintf(attr, sizeof(attr), "%u", r);
        struct sluice_attr a = {"r", 1, attr, (uint32_t)al};
        sent_us[r] = mono_us();
        int rc = sluice_produce(p, key, kl, value, vl, &a, 1, on_delivery, (void *)(uintptr_t)r);
        if (rc != SL_OK) {
            fprintf(stderr, "produce %u: %s\n", r, sluice_last_error());
            int zero = 0;
            atomic_compare_exchange_strong(&first_err, &zero, rc);
            break;
        }
        atomic_store(&produced, r + 1);
        if (r % 64 == 63) {
            it_sleep_ms(1); /* a steady stream, not a burst that fills the buffer */
        }
    }
    return NULL;
}

/* ---- a reader's checks ---- */

struct reader {
    const char *name;
    uint8_t *seen;         /* per record: times read */
    uint32_t *last_of_key; /* per key: the last record number read + 1 */
    uint32_t *read_shard;  /* per record */
    uint64_t *read_seq;
    uint64_t *read_ts;   /* per record: the broker's append time */
    uint32_t *log_shard; /* read order */
    uint64_t *log_seq;
    uint64_t n;                    /* records read */
    uint64_t next_seq[SHARDS_MAX]; /* per shard: the next sequence expected */
    int started[SHARDS_MAX];
    int bad; /* first problem found: printed once */
    /* Set: copies of records away from their acknowledged place are allowed where a retry
     * after kill -9 could have left them (counted in n and copies, not in seen). */
    const struct sluice_stream_info *lineage;
    uint64_t copies;
};

/* Whether shard `a` is an ancestor of shard `b` in the description. */
static int is_ancestor(const struct sluice_stream_info *info, uint32_t a, uint32_t b)
{
    uint32_t todo[SHARDS_MAX], n = 0;
    todo[n++] = b;
    while (n > 0) {
        uint32_t x = todo[--n];
        for (uint32_t i = 0; i < info->shards_len; i++) {
            const struct sluice_shard_info *s = &info->shards[i];
            for (uint32_t k = 0; s->shard == x && k < s->parents_len; k++) {
                if (s->parents[k] == a) {
                    return 1;
                }
                if (n < SHARDS_MAX) {
                    todo[n++] = s->parents[k];
                }
            }
        }
    }
    return 0;
}

static void reader_init(struct reader *rd, const char *name)
{
    memset(rd, 0, sizeof(*rd));
    rd->name = name;
    rd->seen = calloc(RECORDS_MAX, 1);
    rd->last_of_key = calloc(KEYS + 1, sizeof(uint32_t));
    rd->read_shard = calloc(RECORDS_MAX, sizeof(uint32_t));
    rd->read_seq = calloc(RECORDS_MAX, sizeof(uint64_t));
    rd->read_ts = calloc(RECORDS_MAX, sizeof(uint64_t));
    rd->log_shard = calloc(RECORDS_MAX, sizeof(uint32_t));
    rd->log_seq = calloc(RECORDS_MAX, sizeof(uint64_t));
}

static void reader_fini(struct reader *rd)
{
    free(rd->seen);
    free(rd->last_of_key);
    free(rd->read_shard);
    free(rd->read_seq);
    free(rd->read_ts);
    free(rd->log_shard);
    free(rd->log_seq);
}

static void reader_bad(struct reader *rd, const char *what, const struct sluice_record *rec)
{
    if (!rd->bad) {
        fprintf(stderr, "%s: %s (shard %u seq %" PRIu64 ": %.*s)\n", rd->name, what, rec->shard,
                rec->seq, (int)rec->value_len, (const char *)rec->value);
    }
    rd->bad = 1;
}

/* Checks one record as read (`tail_only`: the reader starts mid-way: a key's first record
 * read may be any, the ones after it must follow without a hole). */
static void reader_take(struct reader *rd, const struct sluice_record *rec, int tail_only)
{
    char buf[128], key[16], want[96];
    if (rec->value_len >= sizeof(buf) || rec->shard >= SHARDS_MAX || rd->n >= RECORDS_MAX) {
        reader_bad(rd, "record out of bounds", rec);
        return;
    }
    memcpy(buf, rec->value, rec->value_len);
    buf[rec->value_len] = '\0';
    const char *h = strchr(buf, '#');
    unsigned long r = h != NULL ? strtoul(h + 1, NULL, 10) : RECORDS_MAX;
    if (r >= RECORDS_MAX) {
        reader_bad(rd, "value without a record number", rec);
        return;
    }
    uint32_t kl = key_of((uint32_t)r, key);
    uint32_t vl = value_of((uint32_t)r, want, sizeof(want));
    char attr[16];
    int al = snprintf(attr, sizeof(attr), "%lu", r);
    if (rec->key_len != kl || memcmp(rec->key, key, kl) != 0 || rec->value_len != vl ||
        memcmp(rec->value, want, vl) != 0 || rec->attr_count != 1 || rec->attrs[0].key_len != 1 ||
        rec->attrs[0].key[0] != 'r' || rec->attrs[0].value_len != (uint32_t)al ||
        memcmp(rec->attrs[0].value, attr, al) != 0) {
        reader_bad(rd, "key, value or attribute differ from what was produced", rec);
        return;
    }
    if (rd->started[rec->shard] && rec->seq != rd->next_seq[rec->shard]) {
        reader_bad(rd, "a shard's sequences out of order or with a gap", rec);
        return;
    }
    rd->started[rec->shard] = 1;
    rd->next_seq[rec->shard] = rec->seq + 1;
    rd->log_shard[rd->n] = rec->shard;
    rd->log_seq[rd->n] = rec->seq;
    rd->n++;
    if (rd->lineage != NULL && (rec->shard != ack_shard[r] || rec->seq != ack_seq[r])) {
        /* after kill -9: an attempt stored before its answer was lost (the broker's de-dup
         * memory went with it), acknowledged on a retry - below in the same shard, or in a
         * closed ancestor the retry was moved from */
        if (!(rec->shard == ack_shard[r] && rec->seq < ack_seq[r]) &&
            !is_ancestor(rd->lineage, rec->shard, ack_shard[r])) {
            reader_bad(rd, "a copy where no retry could have put it", rec);
        }
        rd->copies++;
        return;
    }
    if (rd->seen[r]++ > 0) {
        reader_bad(rd, "record read twice", rec);
        return;
    }
    uint32_t k = kl > 0 ? (uint32_t)(r % KEYS) : KEYS;
    if (kl > 0) {
        uint32_t last = rd->last_of_key[k];
        /* in order; and without a hole: the key's previous record (r - KEYS, unless that one
         * had no key) was read just before - except the first a mid-way reader sees */
        uint32_t prev = (uint32_t)r >= KEYS ? (uint32_t)r - KEYS : UINT32_MAX;
        while (prev != UINT32_MAX && prev % UNKEYED_EVERY == UNKEYED_EVERY - 1) {
            prev = prev >= KEYS ? prev - KEYS : UINT32_MAX;
        }
        uint32_t want_last = prev == UINT32_MAX ? 0 : prev + 1;
        if (last > r || (last != want_last && !(tail_only && last == 0))) {
            reader_bad(rd, "a key's records out of order or with a hole", rec);
            return;
        }
        rd->last_of_key[k] = (uint32_t)r + 1;
    }
    rd->read_shard[r] = rec->shard;
    rd->read_seq[r] = rec->seq;
    rd->read_ts[r] = rec->timestamp_ms;
}

/* Polls `c` into `rd` until it read `want` records (0: until *stop) or `deadline_ms`. */
static void reader_run(struct reader *rd, sluice_consumer *c, uint64_t want, atomic_int *stop,
                       uint64_t deadline_ms, int tail_only)
{
    struct sluice_record recs[512];
    while (!rd->bad && it_mono_ms() < deadline_ms) {
        if (want > 0 ? rd->n - rd->copies >= want : atomic_load(stop) != 0) {
            break;
        }
        size_t n = 0;
        int rc = sluice_consumer_poll(c, recs, 512, &n, 100);
        if (rc != SL_OK) {
            fprintf(stderr, "%s: poll: %s\n", rd->name, sluice_last_error());
            rd->bad = 1;
            break;
        }
        for (size_t i = 0; i < n; i++) {
            reader_take(rd, &recs[i], tail_only);
        }
    }
}

/* No record of a child before every record of each parent the reader was to read: `total`
 * per shard (NULL: all of the shard, per the final description). */
static int reader_lineage_ok(const struct reader *rd, const struct sluice_stream_info *info,
                             const uint64_t *want_total)
{
    uint64_t count[SHARDS_MAX] = {0};
    uint64_t total[SHARDS_MAX] = {0};
    const struct sluice_shard_info *by_id[SHARDS_MAX] = {0};
    for (uint32_t i = 0; i < info->shards_len; i++) {
        const struct sluice_shard_info *s = &info->shards[i];
        if (s->shard >= SHARDS_MAX) {
            return 0;
        }
        by_id[s->shard] = s;
        total[s->shard] = want_total != NULL ? want_total[s->shard] : s->next_seq - s->first_seq;
    }
    for (uint64_t i = 0; i < rd->n; i++) {
        uint32_t sh = rd->log_shard[i];
        if (count[sh]++ > 0 || by_id[sh] == NULL) {
            continue;
        }
        for (uint32_t k = 0; k < by_id[sh]->parents_len; k++) {
            uint32_t p = by_id[sh]->parents[k];
            if (p >= SHARDS_MAX || count[p] != total[p]) {
                fprintf(stderr,
                        "%s: shard %u read (seq %" PRIu64 ") after %" PRIu64 " of the %" PRIu64
                        " records of its parent %u\n",
                        rd->name, sh, rd->log_seq[i], count[p < SHARDS_MAX ? p : 0],
                        total[p < SHARDS_MAX ? p : 0], p);
                return 0;
            }
        }
    }
    return 1;
}

/* ---- the consumer thread (reads while the stream changes) ---- */

struct live {
    sluice_client *cl;
    struct reader rd;
    atomic_int stop;
    uint64_t want;     /* set before stop: how many to read */
    const char *group; /* NULL: a plain consumer of the whole stream; else a group member */
};

static void *consumer_main(void *arg)
{
    struct live *lv = arg;
    /* a member commits often: a closed shard counts as finished once committed at its end */
    struct sluice_consumer_opts o = {.start = {.kind = SLUICE_TRIM_HORIZON},
                                     .auto_commit_ms = lv->group != NULL ? 100 : 0};
    sluice_consumer *c = NULL;
    if (sluice_consumer_new(lv->cl, STREAM, lv->group, &o, &c) != SL_OK) {
        fprintf(stderr, "consumer: %s\n", sluice_last_error());
        lv->rd.bad = 1;
        return NULL;
    }
    reader_run(&lv->rd, c, 0, &lv->stop, UINT64_MAX, 0);
    /* then the rest: everything acknowledged */
    reader_run(&lv->rd, c, lv->want, NULL, it_mono_ms() + DRAIN_MS, 0);
    sluice_consumer_free(c);
    return NULL;
}

/* ---- an ordered queue group reading throughout ---- */

/* Receives and acknowledges on an ordered queue group of the stream until it has every
 * acknowledged record: each once, and each key's records in order without a hole - across
 * the changes too (the broker delivers a child's records only once its parents are fully
 * acknowledged). */
struct qreader {
    sluice_client *cl;
    uint8_t *seen;
    uint32_t *last_of_key;
    uint64_t n, want;
    atomic_int stop;
    int bad;
};

static void *queue_main(void *arg)
{
    struct qreader *q = arg;
    uint64_t deadline = UINT64_MAX;
    while (!q->bad && it_mono_ms() < deadline) {
        if (atomic_load(&q->stop)) {
            if (deadline == UINT64_MAX) {
                deadline = it_mono_ms() + DRAIN_MS;
            }
            if (q->n >= q->want) {
                break;
            }
        }
        struct sluice_message *m = NULL;
        size_t n = 0;
        if (sluice_queue_receive(q->cl, STREAM, "ordered", 500, 100, 120000, &m, &n) != SL_OK) {
            fprintf(stderr, "queue receive: %s\n", sluice_last_error());
            q->bad = 1;
            break;
        }
        const char *receipts[500];
        for (size_t i = 0; i < n; i++) {
            receipts[i] = m[i].receipt;
            char buf[128];
            uint32_t vl = m[i].value_len < sizeof(buf) - 1 ? m[i].value_len : sizeof(buf) - 1;
            memcpy(buf, m[i].value, vl);
            buf[vl] = '\0';
            const char *h = strchr(buf, '#');
            unsigned long r = h != NULL ? strtoul(h + 1, NULL, 10) : RECORDS_MAX;
            if (r >= RECORDS_MAX || q->seen[r]++ > 0) {
                fprintf(stderr, "queue: record %lu delivered %s\n", r,
                        r >= RECORDS_MAX ? "unparsed" : "twice");
                q->bad = 1;
                continue;
            }
            char key[16];
            if (key_of((uint32_t)r, key) > 0) {
                uint32_t k = (uint32_t)(r % KEYS);
                uint32_t prev = (uint32_t)r >= KEYS ? (uint32_t)r - KEYS : UINT32_MAX;
                while (prev != UINT32_MAX && prev % UNKEYED_EVERY == UNKEYED_EVERY - 1) {
                    prev = prev >= KEYS ? prev - KEYS : UINT32_MAX;
                }
                uint32_t want_last = prev == UINT32_MAX ? 0 : prev + 1;
                if (q->last_of_key[k] != want_last) {
                    fprintf(stderr, "queue: record %lu of key %u after record %u of it\n", r, k,
                            q->last_of_key[k] - 1);
                    q->bad = 1;
                }
                q->last_of_key[k] = (uint32_t)r + 1;
            }
            q->n++;
        }
        int results[500];
        if (n > 0 && sluice_queue_ack(q->cl, STREAM, "ordered", receipts, n, results) != SL_OK) {
            fprintf(stderr, "queue ack: %s\n", sluice_last_error());
            q->bad = 1;
        }
        sluice_messages_free(m, n);
    }
    return NULL;
}

/* ---- the changes ---- */

/* Two adjacent open shards (the first open shard by range and the next). */
static int adjacent_open(const struct sluice_stream_info *info, uint32_t *a, uint32_t *b)
{
    for (uint32_t i = 0; i < info->shards_len; i++) {
        const struct sluice_shard_info *x = &info->shards[i];
        for (uint32_t j = 0; j < info->shards_len && !x->closed; j++) {
            const struct sluice_shard_info *y = &info->shards[j];
            if (!y->closed && x->hash_end != UINT64_MAX && y->hash_start == x->hash_end + 1) {
                *a = x->shard;
                *b = y->shard;
                return 1;
            }
        }
    }
    return 0;
}

static int change(sluice_client *cl, int step, uint64_t *time_mark)
{
    struct sluice_reshard_result *r = NULL;
    int rc = SL_OK;
    uint32_t want_open = 0;
    switch (step) {
    case 0:
        rc = sluice_stream_split(cl, STREAM, 1, NULL, &r);
        want_open = 5;
        break;
    case 1:
        rc = sluice_stream_reshard(cl, STREAM, 8, &r);
        want_open = 8;
        break;
    case 2: {
        struct sluice_stream_info *info = NULL;
        uint32_t a = 0, b = 0;
        rc = sluice_stream_describe(cl, STREAM, &info);
        if (rc == SL_OK && !adjacent_open(info, &a, &b)) {
            rc = SL_ENOTFOUND;
        }
        sluice_stream_info_free(info);
        *time_mark = it_wall_ms();
        if (rc == SL_OK) {
            rc = sluice_stream_merge(cl, STREAM, b, a, &r); /* either order */
        }
        want_open = 7;
        break;
    }
    default:
        rc = sluice_stream_reshard(cl, STREAM, 3, &r);
        want_open = 3;
        break;
    }
    if (rc != SL_OK) {
        fprintf(stderr, "change %d: %s (%s)\n", step, sluice_last_error(), sluice_strerror(rc));
        return rc;
    }
    int ok = r->stream->open_shards == want_open && r->opened_len > 0 && r->closed_len > 0;
    fprintf(stderr, "change %d: %u open shards of %u (closed %zu, opened %zu)\n", step,
            r->stream->open_shards, r->stream->shard_count, r->closed_len, r->opened_len);
    sluice_reshard_result_free(r);
    return ok ? SL_OK : SL_EPROTO;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Prints p50, p99 and max of the delivery latency of the records produced in [from, to)
 * (monotonic us); all of them when to is 0. */
static void latency_report(const char *what, uint32_t n, uint64_t from, uint64_t to)
{
    uint64_t *lat = malloc((n + 1) * sizeof(*lat));
    uint32_t k = 0;
    for (uint32_t r = 0; r < n; r++) {
        if (to == 0 || (sent_us[r] >= from && sent_us[r] < to)) {
            lat[k++] = ack_us[r] - sent_us[r];
        }
    }
    if (k > 0) {
        qsort(lat, k, sizeof(*lat), cmp_u64);
        fprintf(stderr, "ack latency %s: %u records, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", what,
                k, lat[k / 2] / 1000.0, lat[(uint64_t)k * 99 / 100] / 1000.0, lat[k - 1] / 1000.0);
    }
    free(lat);
}

TEST(produce_and_consume_through_split_reshard_merge)
{
    sluice_client *admin = NULL, *pc = NULL;
    CHECK_EQ(it_connect(&broker, &admin), SL_OK);
    CHECK_EQ(it_create_stream(admin, STREAM, 4), SL_OK);
    /* a broker that cannot reshard: skip (checked on another stream, before anything runs) */
    CHECK_EQ(it_create_stream(admin, "probe", 2), SL_OK);
    int probe = sluice_stream_split(admin, "probe", 0, NULL, NULL);
    if (probe == SL_EUNSUPPORTED) {
        sluice_client_free(admin);
        SKIP("the broker cannot reshard (ReshardStream unsupported)");
    }
    CHECK_EQ(probe, SL_OK);

    memset(ack_shard, 0xff, RECORDS_MAX * sizeof(*ack_shard));
    CHECK_EQ(it_connect(&broker, &pc), SL_OK);
    struct sluice_producer_opts po = {.linger_ms = 2,
                                      .batch_bytes = 32u << 10,
                                      .compression = SLUICE_COMPRESSION_ZSTD,
                                      .block_when_full = 1,
                                      .buffer_bytes = 8u << 20};
    sluice_producer *p = NULL;
    CHECK_EQ(sluice_producer_new(pc, STREAM, &po, &p), SL_OK);
    CHECK_EQ(sluice_producer_shard_count(p), 4);

    struct live *lv = calloc(1, sizeof(*lv));
    reader_init(&lv->rd, "live consumer");
    CHECK_EQ(it_connect(&broker, &lv->cl), SL_OK);
    /* and a member of a consumer group: the coordinator hands it a child once its parents
     * are finished (closed, and committed at their ends) */
    struct live *gm = calloc(1, sizeof(*gm));
    reader_init(&gm->rd, "group member");
    gm->group = "live-group";
    CHECK_EQ(it_connect(&broker, &gm->cl), SL_OK);
    /* and an ordered queue group, receiving and acknowledging as it goes */
    struct sluice_queue_group_opts qo = {.ordered = 1, .max_inflight = 5000};
    CHECK_EQ(sluice_queue_group_create(admin, STREAM, "ordered", &qo), SL_OK);
    struct qreader *qr = calloc(1, sizeof(*qr));
    qr->seen = calloc(RECORDS_MAX, 1);
    qr->last_of_key = calloc(KEYS, sizeof(uint32_t));
    CHECK_EQ(it_connect(&broker, &qr->cl), SL_OK);
    pthread_t pt, ct, gt, qt;
    CHECK_EQ(pthread_create(&ct, NULL, consumer_main, lv), 0);
    CHECK_EQ(pthread_create(&gt, NULL, consumer_main, gm), 0);
    CHECK_EQ(pthread_create(&qt, NULL, queue_main, qr), 0);
    CHECK_EQ(pthread_create(&pt, NULL, producer_main, p), 0);

    uint64_t time_mark = 0, change_us[4] = {0};
    int rc = SL_OK;
    for (int step = 0; step < 4 && rc == SL_OK; step++) {
        it_sleep_ms(STEP_MS);
        change_us[step] = mono_us();
        rc = change(admin, step, &time_mark);
    }
    it_sleep_ms(STEP_MS);
    atomic_store(&stop_producing, 1);
    pthread_join(pt, NULL);
    CHECK_EQ(rc, SL_OK);
    CHECK_EQ(sluice_producer_flush(p, 60000u * IT_SLOWDOWN), SL_OK);
    struct sluice_producer_stats st;
    sluice_producer_stats(p, &st);
    uint32_t n = atomic_load(&produced);
    fprintf(stderr,
            "produced %u records: %" PRIu64 " acknowledged, %" PRIu64 " failed, %" PRIu64
            " re-routed, %" PRIu64 " layout refreshes, %" PRIu64 " retries, %" PRIu64
            " duplicates; producer knows %u shard ids\n",
            n, st.records_sent, st.records_failed, st.rerouted, st.layout_refreshes, st.retries,
            st.duplicates, sluice_producer_shard_count(p));
    CHECK_EQ(atomic_load(&acked_err), 0);
    CHECK_EQ(atomic_load(&acked_ok), n);
    /* the pause producers see: records produced from 20 ms before a change to 100 ms after */
    latency_report("overall", n, 0, 0);
    for (int step = 0; step < 4; step++) {
        char what[32];
        snprintf(what, sizeof(what), "around change %d", step);
        latency_report(what, n, change_us[step] - 20000u, change_us[step] + 100000u);
    }
    CHECK(n > 4u * KEYS);
    CHECK(st.rerouted > 0);          /* closed shards refused batches: records moved */
    CHECK(st.layout_refreshes >= 2); /* at creation, then after a refusal */

    lv->want = n;
    atomic_store(&lv->stop, 1);
    gm->want = n;
    atomic_store(&gm->stop, 1);
    qr->want = n;
    atomic_store(&qr->stop, 1);
    pthread_join(ct, NULL);
    pthread_join(gt, NULL);
    pthread_join(qt, NULL);
    fprintf(stderr, "ordered queue group received %" PRIu64 " of %u records\n", qr->n, n);
    CHECK_EQ(qr->bad, 0);
    CHECK_EQ(qr->n, n);
    for (uint32_t r = 0; r < n; r++) {
        CHECK_EQ(qr->seen[r], 1);
    }
    struct sluice_stream_info *info = NULL;
    CHECK_EQ(sluice_stream_describe(admin, STREAM, &info), SL_OK);
    CHECK_EQ(info->open_shards, 3);
    CHECK(info->shard_count <= SHARDS_MAX);

    /* the live reader, then a fresh one over the whole lineage */
    struct reader fresh;
    reader_init(&fresh, "fresh consumer");
    sluice_consumer *fc = NULL;
    struct sluice_consumer_opts fo = {.start = {.kind = SLUICE_TRIM_HORIZON}};
    CHECK_EQ(sluice_consumer_new(admin, STREAM, NULL, &fo, &fc), SL_OK);
    reader_run(&fresh, fc, n, NULL, it_mono_ms() + DRAIN_MS, 0);
    sluice_consumer_free(fc);
    struct reader *rds[] = {&lv->rd, &fresh, &gm->rd};
    for (int k = 0; k < 3; k++) {
        struct reader *rd = rds[k];
        fprintf(stderr, "%s read %" PRIu64 " of %u records\n", rd->name, rd->n, n);
        CHECK_EQ(rd->bad, 0);
        CHECK_EQ(rd->n, n);
        for (uint32_t r = 0; r < n; r++) {
            if (rd->seen[r] != 1 || rd->read_shard[r] != ack_shard[r] ||
                rd->read_seq[r] != ack_seq[r]) {
                fprintf(stderr,
                        "%s: record %u read %u times at %u/%" PRIu64 ", acknowledged at %u/%" PRIu64
                        "\n",
                        rd->name, r, rd->seen[r], rd->read_shard[r], rd->read_seq[r], ack_shard[r],
                        ack_seq[r]);
                CHECK(0);
            }
        }
        CHECK(reader_lineage_ok(rd, info, NULL));
    }

    /* from a time between two changes: per key an unbroken tail, across the lineage */
    struct reader tail;
    reader_init(&tail, "consumer from a time");
    struct sluice_consumer_opts to = {.start = {.kind = SLUICE_AT_TIMESTAMP, .time_ms = time_mark}};
    CHECK(time_mark > 0);
    CHECK_EQ(sluice_consumer_new(admin, STREAM, NULL, &to, &fc), SL_OK);
    /* it reads until it has caught up with every shard, lineage included */
    uint64_t deadline = it_mono_ms() + DRAIN_MS;
    while (!tail.bad && it_mono_ms() < deadline) {
        reader_run(&tail, fc, tail.n + 1, NULL, it_mono_ms() + 300, 1);
        if (sluice_consumer_caught_up(fc) && tail.n > 0) {
            break;
        }
    }
    sluice_consumer_free(fc);
    fprintf(stderr, "%s read %" PRIu64 " records\n", tail.name, tail.n);
    CHECK_EQ(tail.bad, 0);
    CHECK(tail.n > 0 && tail.n < n);
    /* exactly the records appended at or after the time (the fresh reader saw every append
     * time), and each parent's share of them before its children's */
    uint64_t from_time[SHARDS_MAX] = {0};
    for (uint32_t r = 0; r < n; r++) {
        int after = fresh.read_ts[r] >= time_mark;
        if (tail.seen[r] != after) {
            fprintf(stderr,
                    "record %u appended at %" PRIu64 " (from %" PRIu64 "): read %u "
                    "times from the time\n",
                    r, fresh.read_ts[r], time_mark, tail.seen[r]);
            CHECK(0);
        }
        from_time[fresh.read_shard[r]] += (uint64_t)after;
    }
    CHECK(reader_lineage_ok(&tail, info, from_time));
    /* every key has records after the mark; whatever it read of a key, it read all that
     * key's later records too */
    for (uint32_t k = 0; k < KEYS; k++) {
        CHECK(tail.last_of_key[k] != 0);
    }
    for (uint32_t r = 0; r < n; r++) {
        char key[16];
        if (key_of(r, key) > 0 && tail.last_of_key[r % KEYS] != 0 && !tail.seen[r] &&
            r + 1 > tail.last_of_key[r % KEYS]) {
            fprintf(stderr, "record %u of a key read from a time is missing\n", r);
            CHECK(0);
        }
    }

    sluice_stream_info_free(info);
    reader_fini(&tail);
    reader_fini(&fresh);
    reader_fini(&lv->rd);
    reader_fini(&gm->rd);
    sluice_producer_free(p);
    sluice_client_free(lv->cl);
    sluice_client_free(gm->cl);
    sluice_client_free(qr->cl);
    free(qr->seen);
    free(qr->last_of_key);
    free(qr);
    free(lv);
    free(gm);
    sluice_client_free(pc);
    sluice_client_free(admin);
}

/* ---- kill -9 around changes ---- */

/* The producer rides over two kill -9s of the broker, one right after a split answered and
 * one right after a reshard answered: batches in flight to shards that closed come back
 * failed, are resent there (a stored one: "duplicate" while the broker remembers it) or
 * moved on. Every acknowledged record is read once where its delivery said, each key in
 * order; a copy of a record elsewhere only where a retry after the kill put it. */
TEST(producer_across_kill9_and_changes)
{
    const char *stream = "k9";
    sluice_client *admin = NULL, *pc = NULL;
    CHECK_EQ(it_connect(&broker, &admin), SL_OK);
    CHECK_EQ(it_create_stream(admin, stream, 4), SL_OK);
    memset(ack_shard, 0xff, RECORDS_MAX * sizeof(*ack_shard));
    memset(ack_seq, 0, RECORDS_MAX * sizeof(*ack_seq));
    atomic_store(&acked_ok, 0);
    atomic_store(&acked_err, 0);
    atomic_store(&first_err, 0);
    atomic_store(&produced, 0);
    atomic_store(&stop_producing, 0);
    CHECK_EQ(it_connect(&broker, &pc), SL_OK);
    struct sluice_producer_opts po = {.linger_ms = 2,
                                      .batch_bytes = 16u << 10,
                                      .block_when_full = 1,
                                      .buffer_bytes = 4u << 20,
                                      .retries = 30};
    sluice_producer *p = NULL;
    CHECK_EQ(sluice_producer_new(pc, stream, &po, &p), SL_OK);
    pthread_t pt;
    CHECK_EQ(pthread_create(&pt, NULL, producer_main, p), 0);
    int rc = SL_OK;
    for (int round = 0; round < 2 && rc == SL_OK; round++) {
        it_sleep_ms(STEP_MS);
        rc = round == 0 ? sluice_stream_split(admin, stream, 1, NULL, NULL)
                        : sluice_stream_reshard(admin, stream, 7, NULL);
        if (rc != SL_OK) {
            fprintf(stderr, "change %d: %s\n", round, sluice_last_error());
            break;
        }
        if (it_broker_kill9(&broker) != 0 || it_broker_restart(&broker) != 0) {
            rc = SL_EIO;
        }
    }
    it_sleep_ms(STEP_MS);
    atomic_store(&stop_producing, 1);
    pthread_join(pt, NULL);
    CHECK_EQ(rc, SL_OK);
    CHECK_EQ(sluice_producer_flush(p, 120000u * IT_SLOWDOWN), SL_OK);
    struct sluice_producer_stats st;
    sluice_producer_stats(p, &st);
    sluice_producer_free(p);
    uint32_t n = atomic_load(&produced);
    fprintf(stderr,
            "kill -9: %u records, %" PRIu64 " acknowledged, %" PRIu64 " failed, %" PRIu64
            " re-routed, %" PRIu64 " retries, %" PRIu64 " duplicates\n",
            n, st.records_sent, st.records_failed, st.rerouted, st.retries, st.duplicates);
    CHECK_EQ(atomic_load(&acked_err), 0);
    CHECK_EQ(atomic_load(&acked_ok), n);
    struct sluice_stream_info *info = NULL;
    CHECK_EQ(sluice_stream_describe(admin, stream, &info), SL_OK);
    CHECK_EQ(info->open_shards, 7);
    struct reader rd;
    reader_init(&rd, "reader after kill -9");
    rd.lineage = info;
    sluice_consumer *c = NULL;
    struct sluice_consumer_opts co = {.start = {.kind = SLUICE_TRIM_HORIZON}};
    CHECK_EQ(sluice_consumer_new(admin, stream, NULL, &co, &c), SL_OK);
    reader_run(&rd, c, n, NULL, it_mono_ms() + DRAIN_MS, 0);
    sluice_consumer_free(c);
    fprintf(stderr, "%s: %" PRIu64 " records, %" PRIu64 " copies from retries\n", rd.name, rd.n,
            rd.copies);
    CHECK_EQ(rd.bad, 0);
    CHECK_EQ(rd.n - rd.copies, n);
    for (uint32_t r = 0; r < n; r++) {
        CHECK_EQ(rd.seen[r], 1);
    }
    CHECK(reader_lineage_ok(&rd, info, NULL));
    reader_fini(&rd);
    sluice_stream_info_free(info);
    sluice_client_free(pc);
    sluice_client_free(admin);
}

/* ---- an ACK_NONE producer ---- */

static void on_none(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)ctx;
    (void)shard;
    (void)seq;
    if (err != SL_OK) {
        atomic_fetch_add(&acked_err, 1);
    }
}

/* Fire and forget gets no refusal: it learns the split by describing every second, after
 * which everything it sends is stored (what it sent to the closed shard before may not). */
TEST(ack_none_producer_follows_a_split)
{
    sluice_client *cl = NULL;
    CHECK_EQ(it_connect(&broker, &cl), SL_OK);
    CHECK_EQ(it_create_stream(cl, "none", 2), SL_OK);
    struct sluice_producer_opts po = {.ack = SLUICE_ACK_NONE, .linger_ms = 2};
    sluice_producer *p = NULL;
    CHECK_EQ(sluice_producer_new(cl, "none", &po, &p), SL_OK);
    atomic_store(&acked_err, 0);
    uint64_t t0 = it_mono_ms(), split_at = 0;
    uint32_t n = 0, settled_from = UINT32_MAX;
    char key[16], value[32];
    while (it_mono_ms() - t0 < 2500u * IT_SLOWDOWN) {
        uint64_t now = it_mono_ms();
        if (split_at == 0 && now - t0 >= 300) {
            CHECK_EQ(sluice_stream_split(cl, "none", 0, NULL, NULL), SL_OK);
            split_at = now;
        }
        if (split_at != 0 && settled_from == UINT32_MAX && now - split_at >= 1500) {
            settled_from = n; /* a check (every second) came since the split */
        }
        for (int i = 0; i < 32; i++, n++) {
            int kl = snprintf(key, sizeof(key), "k%u", n % 100);
            int vl = snprintf(value, sizeof(value), "%u", n);
            CHECK_EQ(sluice_produce(p, key, (size_t)kl, value, (size_t)vl, NULL, 0, on_none, NULL),
                     SL_OK);
        }
        it_sleep_ms(2);
    }
    CHECK_EQ(sluice_producer_flush(p, 30000), SL_OK);
    struct sluice_producer_stats st;
    sluice_producer_stats(p, &st);
    sluice_producer_free(p);
    fprintf(stderr,
            "ack none: %u records, %" PRIu64 " layout refreshes, the last %u after "
            "the split settled\n",
            n, st.layout_refreshes, n - settled_from);
    CHECK(settled_from < n);
    CHECK(st.layout_refreshes >= 2);
    CHECK_EQ(atomic_load(&acked_err), 0);
    /* read it all: everything from settled_from on is there once, each key in order */
    uint8_t *seen = calloc(n, 1);
    uint32_t last[100] = {0};
    sluice_consumer *c = NULL;
    struct sluice_consumer_opts co = {.start = {.kind = SLUICE_TRIM_HORIZON}};
    CHECK_EQ(sluice_consumer_new(cl, "none", NULL, &co, &c), SL_OK);
    struct sluice_record recs[256];
    uint64_t deadline = it_mono_ms() + DRAIN_MS;
    int bad = 0;
    while (it_mono_ms() < deadline && !bad) {
        size_t got = 0;
        CHECK_EQ(sluice_consumer_poll(c, recs, 256, &got, 200), SL_OK);
        for (size_t i = 0; i < got; i++) {
            char buf[32];
            size_t vl = recs[i].value_len < sizeof(buf) ? recs[i].value_len : sizeof(buf) - 1;
            memcpy(buf, recs[i].value, vl);
            buf[vl] = '\0';
            uint32_t r = (uint32_t)strtoul(buf, NULL, 10);
            bad |= r >= n || seen[r]++ > 0 || last[r % 100] > r + 1;
            last[r % 100] = r + 1;
        }
        if (got == 0 && sluice_consumer_caught_up(c)) {
            break;
        }
    }
    sluice_consumer_free(c);
    CHECK_EQ(bad, 0);
    for (uint32_t r = settled_from; r < n; r++) {
        if (seen[r] != 1) {
            fprintf(stderr, "record %u (after the split settled) read %u times\n", r, seen[r]);
            CHECK(0);
        }
    }
    free(seen);
    sluice_client_free(cl);
}

/* ---- the CLI ---- */

static char cli_out[1u << 16];

/* Runs the CLI on the broker with `args` (NULL-terminated); stdout and stderr together into
 * cli_out. Returns the exit code, or -1. */
static int run_cli(const char *const *args)
{
    const char *argv[40] = {"--broker", broker.addr};
    int argc = 2;
    for (int i = 0; args[i] != NULL && argc < 39; i++) {
        argv[argc++] = args[i];
    }
    argv[argc] = NULL;
    return it_run_cli(&broker, argv, NULL, 1, cli_out, sizeof(cli_out));
}

#define LANDED 500u
static uint32_t landed_shard[LANDED]; /* delivery of record i of the test below */
static atomic_uint landed_ok;

static void on_landed(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)seq;
    if (err == SL_OK) {
        landed_shard[(uintptr_t)ctx] = shard;
        atomic_fetch_add(&landed_ok, 1);
    }
}

#define CLI(code, ...)                                                                             \
    do {                                                                                           \
        int rc_ = run_cli((const char *[]){__VA_ARGS__, NULL});                                    \
        if (rc_ != (code)) {                                                                       \
            fprintf(stderr, "exit %d, not %d:\n%s\n", rc_, (code), cli_out);                       \
            CHECK(0);                                                                              \
        }                                                                                          \
    } while (0)

TEST(cli_split_merge_reshard_describe)
{
    sluice_client *admin = NULL;
    CHECK_EQ(it_connect(&broker, &admin), SL_OK);
    CHECK_EQ(it_create_stream(admin, "cli", 2), SL_OK);
    sluice_client_free(admin);
    /* split at a chosen hash (hexadecimal): shard 0 [0, 7fff...e] -> 2, 3 */
    CLI(0, "stream", "split", "cli", "--shard", "0", "--at", "0x4000000000000000");
    CHECK(strstr(cli_out, "closed shard 0") != NULL);
    CHECK(strstr(cli_out, "opened 2 [0000000000000000-3fffffffffffffff], 3 "
                          "[4000000000000000-") != NULL);
    CHECK(strstr(cli_out, "3 open shards") != NULL);
    CLI(0, "stream", "describe", "cli");
    CHECK(strstr(cli_out, "shards       4\n") != NULL);
    CHECK(strstr(cli_out, "open         3 ") != NULL);
    CHECK(strstr(cli_out, "PARENTS") != NULL && strstr(cli_out, "CHILDREN") != NULL);
    unsigned shard = 0, n_closed = 0, n_child = 0;
    char state[16], par[16], chi[16];
    for (char *line = strtok(cli_out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (sscanf(line, "%u %*x %*x %*u %*u %*u %*u %*s %15s %15s %15s", &shard, state, par,
                   chi) == 4) {
            if (shard == 0) {
                CHECK(strcmp(state, "closed") == 0 && strcmp(par, "-") == 0 &&
                      strcmp(chi, "2,3") == 0);
                n_closed++;
            }
            if (shard == 2 || shard == 3) {
                CHECK(strcmp(state, "open") == 0 && strcmp(par, "0") == 0 && strcmp(chi, "-") == 0);
                n_child++;
            }
        }
    }
    CHECK_EQ(n_closed, 1);
    CHECK_EQ(n_child, 2);
    CLI(0, "stream", "describe", "cli", "--json");
    CHECK(strstr(cli_out, "\"open_shards\":3") != NULL);
    CHECK(strstr(cli_out, "\"closed\":true,\"parents\":[],\"children\":[2,3]") != NULL);
    CHECK(strstr(cli_out, "\"closed\":false,\"parents\":[0],\"children\":[]") != NULL);
    /* merge: 3 and 1 touch ([4000..., 7fff...e] and [7fff...f, ...]) */
    CLI(1, "stream", "merge", "cli", "--shards", "2,1"); /* not adjacent */
    CHECK(strstr(cli_out, "stream merge") != NULL && strstr(cli_out, "EINVAL") != NULL);
    CLI(0, "stream", "merge", "cli", "--shards", "3,1", "--json");
    CHECK(strstr(cli_out, "\"closed\":[") != NULL && strstr(cli_out, "\"opened\":[4]") != NULL);
    CLI(1, "stream", "split", "cli", "--shard", "0"); /* closed already */
    CHECK(strstr(cli_out, "ESHARD_CLOSED") != NULL);
    CLI(1, "stream", "split", "cli", "--shard", "99");
    CHECK(strstr(cli_out, "ENOTFOUND") != NULL);
    CLI(0, "stream", "reshard", "cli", "--shards", "4");
    CHECK(strstr(cli_out, "; 4 open shards") != NULL);
    /* a producer made on a resharded stream writes to its open shards only, by range */
    CHECK_EQ(it_connect(&broker, &admin), SL_OK);
    struct sluice_stream_info *info = NULL;
    CHECK_EQ(sluice_stream_describe(admin, "cli", &info), SL_OK);
    sluice_producer *p = NULL;
    CHECK_EQ(sluice_producer_new(admin, "cli", NULL, &p), SL_OK);
    CHECK_EQ(sluice_producer_shard_count(p), info->shard_count);
    for (uint32_t i = 0; i < LANDED; i++) {
        char key[16];
        int kl = snprintf(key, sizeof(key), "c%u", i);
        CHECK_EQ(
            sluice_produce(p, key, (size_t)kl, "v", 1, NULL, 0, on_landed, (void *)(uintptr_t)i),
            SL_OK);
    }
    CHECK_EQ(sluice_producer_flush(p, 30000), SL_OK);
    sluice_producer_free(p);
    CHECK_EQ(atomic_load(&landed_ok), LANDED);
    for (uint32_t i = 0; i < LANDED; i++) {
        char key[16];
        int kl = snprintf(key, sizeof(key), "c%u", i);
        uint64_t h = sl_partition_hash(key, (size_t)kl);
        int in_range = 0;
        for (uint32_t k = 0; k < info->shards_len; k++) {
            const struct sluice_shard_info *si = &info->shards[k];
            in_range |= si->shard == landed_shard[i] && !si->closed && si->hash_start <= h &&
                        h <= si->hash_end;
        }
        CHECK(in_range);
    }
    sluice_stream_info_free(info);
    sluice_client_free(admin);
    CLI(1, "stream", "reshard", "nosuch", "--shards", "4");
    /* usage errors name the option */
    CLI(2, "stream", "merge", "cli", "--shards", "1");
    CHECK(strstr(cli_out, "--shards") != NULL && strstr(cli_out, "A,B") != NULL);
    CLI(2, "stream", "merge", "cli", "--shards", "4,4");
    CHECK(strstr(cli_out, "itself") != NULL);
    CLI(2, "stream", "split", "cli", "--shard", "4", "--at", "0xzz");
    CHECK(strstr(cli_out, "--at") != NULL && strstr(cli_out, "hash") != NULL);
    CLI(2, "stream", "split", "cli");
    CLI(2, "stream", "reshard", "cli", "--shards", "0");
}

int main(void)
{
    int pf = it_preflight();
    if (pf != 0) {
        return pf;
    }
    if (it_broker_start(&broker, "always") != 0) {
        return 1;
    }
    ack_shard = malloc(RECORDS_MAX * sizeof(*ack_shard));
    ack_seq = calloc(RECORDS_MAX, sizeof(*ack_seq));
    sent_us = calloc(RECORDS_MAX, sizeof(*sent_us));
    ack_us = calloc(RECORDS_MAX, sizeof(*ack_us));
    if (ack_shard == NULL || ack_seq == NULL || sent_us == NULL || ack_us == NULL) {
        return 1;
    }
    RUN(produce_and_consume_through_split_reshard_merge);
    RUN(ack_none_producer_follows_a_split);
    RUN(cli_split_merge_reshard_describe);
    RUN(producer_across_kill9_and_changes); /* last: it restarts the broker */
    it_broker_cleanup(&broker);
    free(ack_shard);
    free(ack_seq);
    free(sent_us);
    free(ack_us);
    TEST_END();
}
