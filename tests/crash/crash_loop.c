/* crash_loop.c - the broker is killed with SIGKILL over and over under load; nothing
 * acknowledged is lost, nothing is corrupted, the queue group keeps its promises.
 *
 * Covers: a 4-shard stream with a queue group on it; 4 producer threads (library producers,
 * durable acks, keys spread, each record's value names its producer and counter and carries
 * a check), a cursor consumer thread (no group, from the oldest record) and a queue consumer
 * thread (receive + ack) run while the main thread kills the broker with SIGKILL and restarts
 * it on the same data directory and port N times (20; SLUICE_IT_LONG=1: 200) after random
 * uptimes of 100-400 ms, timing each recovery (restart -> port file -> a fresh client's
 * describe succeeds). The clients ride through the outages (the library reconnects and the
 * producer retries). Afterwards everything is read once more from TRIM_HORIZON and checked:
 *   - every record whose delivery reported OK is stored at exactly that shard and sequence;
 *   - every shard is contiguous from its first sequence to its tail;
 *   - every record read verifies (the library checks the batch checksums; the test checks
 *     each value against its own encoding);
 *   - a value stored twice belongs to a record whose delivery was not acknowledged (the
 *     broker de-duplicates producer retries, also across a restart: docs/PROTOCOL.md);
 *   - what the cursor consumer saw during the crashes is what is stored now, and it reached
 *     the tail of every shard;
 *   - no record whose ack was confirmed OK is delivered to the queue group again, and the
 *     group eventually acknowledges every record of the stream.
 * Prints kills, records acknowledged, duplicates and max/avg recovery time. The seed comes
 * from SLUICE_SEED (else the clock) and is printed.
 *
 * SLUICE_CRASH_PARKED=1 (integration_crash_loop_parked): the same over 32 shards with
 * open_files_max 32, more shards than the descriptor budget holds open. Each producer sends
 * runs of 32 records to one key, then moves on, so a few shards are hot at a time and the
 * owners park the idle ones and reopen them on their next append or read, all through the
 * kills (the parked state - data synced, index written - is what a kill must find intact);
 * once the load is over, the broker's descriptors are within the budget again.
 */
#include "../unit/test.h"
#include "../integration/harness.h"

#include "common/error.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define SHARDS_DEFAULT 4u
#define SHARDS_MAX 32u /* arrays; the parked mode's shard count */
/* SLUICE_CRASH_PARKED=1 (integration_crash_loop_parked): 32 shards under open_files_max 32
 * (16 descriptors for each of the two workers' shards - the catalog's floor per owner - at 3
 * a shard: 5 of 16 open at a time), so appends and reads reopen parked shards and park
 * others while the kills go on. */
#define PARKED_SHARDS 32u
#define PARKED_OPEN_FILES_MAX 32u
#define PARKED_FD_SLACK 16u /* the test's connection, the queue group's store, a trim's overshoot */
#define PRODUCERS 4u
#define REC_MAX 300000u /* per producer; far above what the CI run reaches */
#define KILLS_CI 20
#define KILLS_LONG 200
#define UPTIME_MIN_MS 100u
#define UPTIME_SPAN_MS 300u /* uptime in [100, 400) ms */
#define RECOVERY_WAIT_MS 30000u
#define DRAIN_WAIT_MS 60000u /* flush, cursor catch-up, queue drain: each at most this */
#define STREAM "chaos"
#define GROUP "workers"
#define QUEUE_VISIBILITY_MS 3000u /* leases lost in a crash come back soon */

enum { ST_PENDING = 0, ST_OK = 1, ST_FAILED = 2 };

/* A growable array of record codes indexed by sequence (one per shard and reader). */
struct codes {
    uint64_t *v;
    size_t len;
    size_t cap;
};

#define CODE_NONE UINT64_MAX

static struct it_broker broker;
static uint32_t shards = SHARDS_DEFAULT; /* PARKED_SHARDS in the parked mode */
static bool parked_mode;
static sluice_client *main_client;         /* freed in main, also after a failed check */
static struct sluice_stream_info *main_info; /* ditto */
static struct codes final_read[SHARDS_MAX];   /* the final read: code per shard and sequence */
static uint64_t test_t0_ms;
static uint64_t kill_at_ms[KILLS_LONG], up_at_ms[KILLS_LONG]; /* since test_t0_ms */
static atomic_int stop_producing;
static atomic_int stop_cursor;
static atomic_int stop_queue;

/* Producers: per record status and acknowledged position. */
static atomic_uchar rec_status[PRODUCERS][REC_MAX];
static uint8_t ack_shard[PRODUCERS][REC_MAX];
static uint64_t ack_seq[PRODUCERS][REC_MAX];
static uint16_t copies[PRODUCERS][REC_MAX];
static atomic_uint produced[PRODUCERS];
static atomic_int first_delivery_err;
static int producer_rc[PRODUCERS];
static struct sluice_producer_stats producer_stats[PRODUCERS];

/* Cursor consumer (owned by its thread until joined). */
static struct codes cursor_seen[SHARDS_MAX];
static uint64_t cursor_next[SHARDS_MAX];
static atomic_ullong cursor_next_pub[SHARDS_MAX];
static uint64_t cursor_gaps, cursor_bad, cursor_errors, cursor_closed;
static int cursor_first_err;
static char cursor_first_msg[256];

/* Queue consumer (owned by its thread until joined). */
static struct codes queue_code[SHARDS_MAX]; /* code of each delivered record */
/* ACK_CONFIRMED once an ack was answered OK; ACK_UNKNOWN when an ack was sent but its answer
 * lost (the broker may have applied it: the record may or may not come back). */
static struct codes queue_acked[SHARDS_MAX];
enum { ACK_NONE_YET = 0, ACK_CONFIRMED = 1, ACK_UNKNOWN = 2 };
static atomic_ullong queue_acked_distinct;  /* records with a confirmed ack */
static atomic_ullong queue_settled_distinct; /* ... or an ack of unknown outcome */
static uint64_t queue_redelivered_after_unknown;
static uint64_t queue_delivered, queue_redelivered_after_ack, queue_bad, queue_mismatch;
static uint64_t queue_stale_acks, queue_errors, queue_closed;
static int queue_first_err;
static char queue_first_msg[256];
static char queue_first_redelivery[160];
#define FAILED_ACKS_MAX 256
struct failed_ack {
    uint32_t shard;
    uint64_t seq_first, seq_last;
    uint32_t n;
    int rc;
    uint64_t ms;
    char msg[96];
};
static struct failed_ack failed_acks[FAILED_ACKS_MAX];
static uint32_t queue_failed_acks;

static int codes_put(struct codes *c, uint64_t seq, uint64_t code)
{
    if (seq >= c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap <= seq) {
            cap *= 2;
        }
        uint64_t *v = realloc(c->v, cap * sizeof(*v));
        if (v == NULL) {
            return -1;
        }
        for (size_t i = c->cap; i < cap; i++) {
            v[i] = CODE_NONE;
        }
        c->v = v;
        c->cap = cap;
    }
    c->v[seq] = code;
    if (seq + 1 > c->len) {
        c->len = seq + 1;
    }
    return 0;
}

static uint64_t codes_get(const struct codes *c, uint64_t seq)
{
    return seq < c->len ? c->v[seq] : CODE_NONE;
}

static void codes_free(struct codes *c)
{
    free(c->v);
    memset(c, 0, sizeof(*c));
}

/* The value of record i of producer p: "p<p>-<i>-<check>:" then padding, 40..103 bytes. */
static size_t make_value(uint32_t p, uint32_t i, char *buf, size_t cap)
{
    uint32_t check = (i * 2654435761u) ^ (p * 40503u + 0x5bd1e995u);
    int n = snprintf(buf, cap, "p%u-%u-%08x:", p, i, check);
    size_t len = 40u + (i * 7u + p) % 64u;
    len = len < cap ? len : cap - 1;
    for (size_t k = (size_t)n; k < len; k++) {
        buf[k] = (char)('a' + (i + k) % 26u);
    }
    buf[len] = '\0';
    return len;
}

/* The code (p << 32 | i) of a value that matches its own encoding exactly, else CODE_NONE. */
static uint64_t value_code(const uint8_t *v, uint32_t len)
{
    char buf[128], want[128];
    if (len == 0 || len >= sizeof(buf)) {
        return CODE_NONE;
    }
    memcpy(buf, v, len);
    buf[len] = '\0';
    unsigned p, i;
    if (sscanf(buf, "p%u-%u-", &p, &i) != 2 || p >= PRODUCERS || i >= REC_MAX) {
        return CODE_NONE;
    }
    size_t wl = make_value(p, i, want, sizeof(want));
    if (wl != len || memcmp(buf, want, len) != 0) {
        return CODE_NONE;
    }
    return (uint64_t)p << 32 | i;
}

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    uint64_t code = (uint64_t)(uintptr_t)ctx;
    uint32_t p = (uint32_t)(code >> 32), i = (uint32_t)code;
    if (err != SL_OK) {
        int zero = 0;
        atomic_compare_exchange_strong(&first_delivery_err, &zero, err);
        atomic_store(&rec_status[p][i], ST_FAILED);
        return;
    }
    ack_shard[p][i] = (uint8_t)shard;
    ack_seq[p][i] = seq;
    atomic_store(&rec_status[p][i], ST_OK);
}

static void *produce_loop(void *arg)
{
    uint32_t p = (uint32_t)(uintptr_t)arg;
    producer_rc[p] = -1;
    sluice_client *c = NULL;
    sluice_producer *prod = NULL;
    /* (the first kill may come before the connection: tried again, as the producer is) */
    int crc = SL_ECLOSED;
    for (int tries = 0; (crc = it_connect(&broker, &c)) != SL_OK && tries < 200; tries++) {
        it_sleep_ms(50);
    }
    if (crc != SL_OK) {
        fprintf(stderr, "  producer %u: connect: %s (%s)\n", p, sl_errname(crc),
                sluice_last_error());
        return NULL;
    }
    struct sluice_producer_opts po = {.batch_bytes = 16u << 10, .linger_ms = 2,
                                      .buffer_bytes = 256u << 10, .block_when_full = 1,
                                      .ack = SLUICE_ACK_DURABLE, .retries = 100000,
                                      .retry_backoff_ms = 20};
    /* (describes the stream: under a loaded machine the first kill may come first) */
    int rc;
    for (int tries = 0; (rc = sluice_producer_new(c, STREAM, &po, &prod)) != SL_OK &&
                        (rc == SL_ECLOSED || rc == SL_EAGAIN) && tries < 200;
         tries++) {
        it_sleep_ms(50);
    }
    if (rc != SL_OK) {
        fprintf(stderr, "  producer %u: new: %s (%s)\n", p, sl_errname(rc), sluice_last_error());
        sluice_client_free(c);
        return NULL;
    }
    char key[16], val[128];
    uint32_t i = 0;
    while (i < REC_MAX && !atomic_load(&stop_producing)) {
        /* parked mode: runs of 32 records to one key, then the next, so a few shards are
         * hot at a time and the others go idle, get parked, and are reopened later */
        uint32_t kn = parked_mode ? (i / 32u + p * 8u) % 97u : (i * 7919u + p * 13u) % 97u;
        int kl = snprintf(key, sizeof(key), "k%u", kn);
        size_t vl = make_value(p, i, val, sizeof(val));
        rc = sluice_produce(prod, key, (size_t)kl, val, vl, NULL, 0, on_delivery,
                            (void *)(uintptr_t)((uint64_t)p << 32 | i));
        if (rc == SL_EAGAIN) {
            it_sleep_ms(5);
            continue;
        }
        if (rc != SL_OK) {
            fprintf(stderr, "  producer %u: produce %u: %s (%s)\n", p, i, sl_errname(rc),
                    sluice_last_error());
            break;
        }
        atomic_store(&produced[p], ++i);
        if (i % 16u == 0) {
            it_sleep_ms(2); /* a steady load, not a flood that ASan builds cannot drain */
        }
    }
    rc = sluice_producer_flush(prod, DRAIN_WAIT_MS);
    if (rc != SL_OK) {
        fprintf(stderr, "  producer %u: flush: %s (%s)\n", p, sl_errname(rc),
                sluice_last_error());
    }
    sluice_producer_stats(prod, &producer_stats[p]);
    sluice_producer_free(prod);
    sluice_client_free(c);
    producer_rc[p] = rc;
    return NULL;
}

static void note_err(int *first, char *msg, size_t cap, int rc)
{
    if (*first == 0) {
        *first = rc;
        snprintf(msg, cap, "%s", sluice_last_error());
    }
}

static void *cursor_loop(void *arg)
{
    (void)arg;
    sluice_client *c = NULL;
    sluice_consumer *cons = NULL;
    if (it_connect(&broker, &c) != SL_OK) {
        cursor_first_err = SL_ECLOSED;
        return NULL;
    }
    struct sluice_consumer_opts co = {.start = {.kind = SLUICE_TRIM_HORIZON}};
    int rc;
    while ((rc = sluice_consumer_new(c, STREAM, NULL, &co, &cons)) != SL_OK) {
        if ((rc != SL_ECLOSED && rc != SL_EAGAIN) || atomic_load(&stop_cursor)) {
            note_err(&cursor_first_err, cursor_first_msg, sizeof(cursor_first_msg), rc);
            sluice_client_free(c);
            return NULL;
        }
        it_sleep_ms(20);
    }
    static struct sluice_record recs[1024];
    while (!atomic_load(&stop_cursor)) {
        size_t got = 0;
        rc = sluice_consumer_poll(cons, recs, 1024, &got, 200);
        if (rc == SL_ECLOSED || rc == SL_EAGAIN) {
            cursor_closed++;
            it_sleep_ms(10);
            continue;
        }
        if (rc != SL_OK) {
            cursor_errors++;
            note_err(&cursor_first_err, cursor_first_msg, sizeof(cursor_first_msg), rc);
            it_sleep_ms(50);
            continue;
        }
        for (size_t r = 0; r < got; r++) {
            const struct sluice_record *rec = &recs[r];
            if (rec->shard >= shards) {
                cursor_bad++;
                continue;
            }
            uint64_t code = value_code(rec->value, rec->value_len);
            cursor_bad += code == CODE_NONE;
            if (rec->seq != cursor_next[rec->shard]) {
                if (cursor_gaps++ < 5) {
                    fprintf(stderr, "  cursor: shard %u: seq %" PRIu64 " after %" PRIu64 "\n",
                            rec->shard, rec->seq, cursor_next[rec->shard]);
                }
            }
            if (codes_put(&cursor_seen[rec->shard], rec->seq, code) != 0) {
                cursor_errors++;
            }
            cursor_next[rec->shard] = rec->seq + 1;
            atomic_store(&cursor_next_pub[rec->shard], rec->seq + 1);
        }
    }
    sluice_consumer_free(cons);
    sluice_client_free(c);
    return NULL;
}

/* One receive + ack round of the queue consumer. */
static void queue_round(sluice_client *c)
{
    struct sluice_message *m = NULL;
    size_t n = 0;
    int rc = sluice_queue_receive(c, STREAM, GROUP, 64, 200, 0, &m, &n);
    if (rc == SL_ECLOSED || rc == SL_EAGAIN) {
        queue_closed++;
        it_sleep_ms(10);
        return;
    }
    if (rc != SL_OK) {
        queue_errors++;
        note_err(&queue_first_err, queue_first_msg, sizeof(queue_first_msg), rc);
        it_sleep_ms(50);
        return;
    }
    const char *receipts[64];
    for (size_t k = 0; k < n; k++) {
        receipts[k] = m[k].receipt;
        queue_delivered++;
        if (m[k].shard >= shards) {
            queue_bad++;
            continue;
        }
        uint64_t code = value_code(m[k].value, m[k].value_len);
        queue_bad += code == CODE_NONE;
        uint64_t a = codes_get(&queue_acked[m[k].shard], m[k].seq);
        queue_redelivered_after_unknown += a == ACK_UNKNOWN;
        if (a == ACK_CONFIRMED) {
            if (queue_redelivered_after_ack++ == 0) {
                snprintf(queue_first_redelivery, sizeof(queue_first_redelivery),
                         "shard %u seq %" PRIu64 " delivery_count %u", m[k].shard, m[k].seq,
                         m[k].delivery_count);
            }
        }
        uint64_t prev = codes_get(&queue_code[m[k].shard], m[k].seq);
        queue_mismatch += prev != CODE_NONE && prev != code;
        if (codes_put(&queue_code[m[k].shard], m[k].seq, code) != 0) {
            queue_errors++;
        }
    }
    if (n > 0) {
        int results[64];
        for (size_t k = 0; k < n; k++) {
            results[k] = -1;
        }
        rc = sluice_queue_ack(c, STREAM, GROUP, receipts, n, results);
        /* per receipt below: only a confirmed OK counts as acked */
        if (rc != SL_OK && queue_failed_acks < FAILED_ACKS_MAX) {
            struct failed_ack *f = &failed_acks[queue_failed_acks++];
            f->shard = m[0].shard;
            f->seq_first = m[0].seq;
            f->seq_last = m[n - 1].seq;
            f->rc = rc;
            f->n = (uint32_t)n;
            f->ms = it_mono_ms();
            snprintf(f->msg, sizeof(f->msg), "%s", sluice_last_error());
        }
        for (size_t k = 0; k < n; k++) {
            if (m[k].shard >= shards) {
                continue;
            }
            struct codes *acked = &queue_acked[m[k].shard];
            uint64_t was = codes_get(acked, m[k].seq);
            uint64_t now = was;
            if (results[k] == SL_OK) {
                now = ACK_CONFIRMED;
            } else if (results[k] == SL_ENOTFOUND) {
                queue_stale_acks++;
            } else if (was != ACK_CONFIRMED) {
                now = ACK_UNKNOWN;
            }
            if (now != was && codes_put(acked, m[k].seq, now) != 0) {
                queue_errors++;
            }
            if (now == ACK_CONFIRMED && was != ACK_CONFIRMED) {
                atomic_fetch_add(&queue_acked_distinct, 1);
            }
            if ((was == CODE_NONE || was == ACK_NONE_YET) && now != was) {
                atomic_fetch_add(&queue_settled_distinct, 1);
            }
        }
    }
    sluice_messages_free(m, n);
}

static void *queue_loop(void *arg)
{
    (void)arg;
    sluice_client *c = NULL;
    if (it_connect(&broker, &c) != SL_OK) {
        queue_first_err = SL_ECLOSED;
        return NULL;
    }
    while (!atomic_load(&stop_queue)) {
        queue_round(c);
    }
    sluice_client_free(c);
    return NULL;
}

/* Restart -> port file -> a fresh client's describe succeeds. Returns ms, or -1. */
static int64_t restart_and_measure(void)
{
    uint64_t t0 = it_mono_ms();
    if (it_broker_restart(&broker) != 0) {
        return -1;
    }
    struct sluice_client_opts o = {.connect_timeout_ms = 2000, .request_timeout_ms = 5000,
                                   .reconnect_backoff_ms = 5, .reconnect_backoff_max_ms = 20,
                                   .client_id = "crash-loop-probe"};
    while (it_mono_ms() - t0 < RECOVERY_WAIT_MS) {
        sluice_client *c = NULL;
        if (sluice_client_new(broker.addr, &o, &c) == SL_OK) {
            struct sluice_stream_info *info = NULL;
            int rc = sluice_stream_describe(c, STREAM, &info);
            sluice_stream_info_free(info);
            sluice_client_free(c);
            if (rc == SL_OK) {
                return (int64_t)(it_mono_ms() - t0);
            }
        }
        it_sleep_ms(2);
    }
    fprintf(stderr, "  no describe within %u ms of the restart: %s\n", RECOVERY_WAIT_MS,
            sluice_last_error());
    return -1;
}

/* Reads the whole stream from TRIM_HORIZON into stored[] and checks contiguity and values.
 * Returns the number of records read, or -1 (after printing why). */
static int64_t read_all(sluice_client *c, const struct sluice_stream_info *info,
                        struct codes stored[SHARDS_MAX])
{
    sluice_consumer *cons = NULL;
    struct sluice_consumer_opts co = {.start = {.kind = SLUICE_TRIM_HORIZON}};
    int rc = sluice_consumer_new(c, STREAM, NULL, &co, &cons);
    if (rc != SL_OK) {
        fprintf(stderr, "  consumer: %s (%s)\n", sl_errname(rc), sluice_last_error());
        return -1;
    }
    uint64_t next[SHARDS_MAX];
    for (uint32_t s = 0; s < shards; s++) {
        next[s] = info->shards[s].first_seq;
    }
    static struct sluice_record recs[4096];
    int64_t total = 0, bad = 0, gaps = 0;
    uint64_t deadline = it_mono_ms() + DRAIN_WAIT_MS;
    for (;;) {
        size_t got = 0;
        rc = sluice_consumer_poll(cons, recs, 4096, &got, 500);
        if (rc != SL_OK) {
            fprintf(stderr, "  final read: %s (%s)\n", sl_errname(rc), sluice_last_error());
            total = -1;
            break;
        }
        for (size_t r = 0; r < got; r++) {
            const struct sluice_record *rec = &recs[r];
            uint64_t code = rec->shard < shards ? value_code(rec->value, rec->value_len)
                                                 : CODE_NONE;
            if (code == CODE_NONE) {
                if (bad++ < 5) {
                    fprintf(stderr, "  record %u/%" PRIu64 " does not verify (%u bytes)\n",
                            rec->shard, rec->seq, rec->value_len);
                }
                continue;
            }
            if (rec->seq != next[rec->shard] && gaps++ < 5) {
                fprintf(stderr, "  shard %u: seq %" PRIu64 " follows %" PRIu64 "\n",
                        rec->shard, rec->seq, next[rec->shard] - 1);
            }
            next[rec->shard] = rec->seq + 1;
            codes_put(&stored[rec->shard], rec->seq, code);
            uint32_t p = (uint32_t)(code >> 32), i = (uint32_t)code;
            copies[p][i] += copies[p][i] < UINT16_MAX;
        }
        total += (int64_t)got;
        if (got == 0 && sluice_consumer_caught_up(cons)) {
            break;
        }
        if (it_mono_ms() > deadline) {
            fprintf(stderr, "  final read: not caught up within %u ms\n", DRAIN_WAIT_MS);
            total = -1;
            break;
        }
    }
    sluice_consumer_free(cons);
    for (uint32_t s = 0; s < shards && total >= 0; s++) {
        if (next[s] != info->shards[s].next_seq) {
            fprintf(stderr, "  shard %u: read up to %" PRIu64 ", tail is %" PRIu64 "\n", s,
                    next[s], info->shards[s].next_seq);
            gaps++;
        }
    }
    if (bad > 0 || gaps > 0) {
        fprintf(stderr, "  final read: %" PRId64 " records do not verify, %" PRId64
                        " gaps or short shards\n", bad, gaps);
        return -1;
    }
    return total;
}

/* Every record acknowledged OK sits at its acknowledged position; counts duplicates.
 * Returns the number of acknowledged records missing. */
static uint64_t check_acknowledged(const struct codes stored[SHARDS_MAX], uint64_t *acked,
                                   uint64_t *dup_acked, uint64_t *dup_unacked,
                                   uint64_t *dup_copies, uint64_t *failed_stored)
{
    uint64_t lost = 0;
    for (uint32_t p = 0; p < PRODUCERS; p++) {
        uint32_t n = atomic_load(&produced[p]);
        for (uint32_t i = 0; i < n; i++) {
            unsigned char st = atomic_load(&rec_status[p][i]);
            uint64_t code = (uint64_t)p << 32 | i;
            *dup_copies += copies[p][i] > 1 ? copies[p][i] - 1u : 0u;
            if (st == ST_OK) {
                (*acked)++;
                *dup_acked += copies[p][i] > 1;
                if (codes_get(&stored[ack_shard[p][i]], ack_seq[p][i]) != code) {
                    if (lost++ < 10) {
                        fprintf(stderr, "  LOST: p%u record %u acknowledged at %u/%" PRIu64
                                        " (copies found: %u)\n",
                                p, i, ack_shard[p][i], ack_seq[p][i], copies[p][i]);
                    }
                }
            } else {
                *dup_unacked += copies[p][i] > 1;
                *failed_stored += st == ST_FAILED && copies[p][i] > 0;
            }
        }
    }
    return lost;
}

/* Waits until the cursor consumer reached every shard's tail, then stops it. */
static int finish_cursor(pthread_t th, const struct sluice_stream_info *info)
{
    uint64_t deadline = it_mono_ms() + DRAIN_WAIT_MS;
    bool done = false;
    while (!done && it_mono_ms() < deadline) {
        done = true;
        for (uint32_t s = 0; s < shards; s++) {
            done = done && atomic_load(&cursor_next_pub[s]) >= info->shards[s].next_seq;
        }
        if (!done) {
            it_sleep_ms(20);
        }
    }
    atomic_store(&stop_cursor, 1);
    pthread_join(th, NULL);
    return done ? 0 : -1;
}

/* Waits until the queue group settled (acked, or sent an ack whose answer was lost) `total`
 * distinct records, then a lease longer, and stops it. */
static int finish_queue(pthread_t th, uint64_t total)
{
    uint64_t deadline = it_mono_ms() + DRAIN_WAIT_MS;
    while (atomic_load(&queue_settled_distinct) < total && it_mono_ms() < deadline) {
        it_sleep_ms(20);
    }
    it_sleep_ms(QUEUE_VISIBILITY_MS + 500); /* anything acked must not come back meanwhile */
    atomic_store(&stop_queue, 1);
    pthread_join(th, NULL);
    return atomic_load(&queue_settled_distinct) >= total ? 0 : -1;
}

static int kills_wanted(void)
{
    const char *v = getenv("SLUICE_IT_LONG");
    return v != NULL && strcmp(v, "1") == 0 ? KILLS_LONG : KILLS_CI;
}

static unsigned seed_get(void)
{
    const char *v = getenv("SLUICE_SEED");
    return v != NULL ? (unsigned)strtoul(v, NULL, 10) : (unsigned)it_wall_ms();
}

static bool settled(uint64_t ack_state)
{
    return ack_state == ACK_CONFIRMED || ack_state == ACK_UNKNOWN;
}

/* Prints the failed acks that covered shard s, seq q..e. */
static void print_failed_acks(uint32_t s, uint64_t q, uint64_t e)
{
    for (uint32_t f = 0; f < queue_failed_acks; f++) {
        const struct failed_ack *fa = &failed_acks[f];
        if (fa->shard == s && fa->seq_first <= e && q <= fa->seq_last) {
            fprintf(stderr, "    an ack of %u receipts (%u/%" PRIu64 "..%" PRIu64
                            ") failed at +%" PRIu64 " ms: %s (%s)\n",
                    fa->n, fa->shard, fa->seq_first, fa->seq_last, fa->ms - test_t0_ms,
                    sl_errname(fa->rc), fa->msg);
        }
    }
}

/* The queue group's record of the stream: returns how many records were neither acked
 * (confirmed) nor sent an ack whose answer was lost; *diff counts deliveries whose content
 * differs from the stream, *unknown the acks of unknown outcome never redelivered. */
static uint64_t check_queue(sluice_client *c, const struct sluice_stream_info *info,
                            const struct codes stored[SHARDS_MAX], uint64_t *diff,
                            uint64_t *unknown)
{
    uint64_t missing = 0;
    for (uint32_t s = 0; s < shards; s++) {
        const struct codes *acked = &queue_acked[s];
        uint64_t tail = info->shards[s].next_seq;
        for (uint64_t q = 0; q < tail; q++) {
            *unknown += codes_get(acked, q) == ACK_UNKNOWN;
            uint64_t qc = codes_get(&queue_code[s], q);
            *diff += qc != CODE_NONE && qc != codes_get(&stored[s], q);
            if (settled(codes_get(acked, q))) {
                continue;
            }
            missing++;
            if (q == 0 || settled(codes_get(acked, q - 1))) {
                uint64_t e = q;
                while (e + 1 < tail && !settled(codes_get(acked, e + 1))) {
                    e++;
                }
                fprintf(stderr, "  queue: never acked: shard %u seq %" PRIu64 "..%" PRIu64
                                " (delivered: %s)\n", s, q, e, qc != CODE_NONE ? "yes" : "no");
                print_failed_acks(s, q, e);
            }
        }
        *diff += queue_code[s].len > tail;
    }
    struct sluice_queue_stats qs;
    memset(&qs, 0, sizeof(qs));
    int rc = sluice_queue_stats(c, STREAM, GROUP, &qs);
    if (rc != SL_OK || qs.visible + qs.inflight + qs.delayed + qs.dead_lettered > 0) {
        fprintf(stderr, "  queue group after the drain: %s: %" PRIu64 " visible, %" PRIu64
                        " in flight, %" PRIu64 " delayed, %" PRIu64 " dead-lettered\n",
                sl_errname(rc), qs.visible, qs.inflight, qs.delayed, qs.dead_lettered);
        missing += rc != SL_OK || qs.visible + qs.inflight + qs.delayed > 0;
    }
    sluice_queue_stats_fini(&qs);
    return missing;
}

TEST(crash_loop)
{
    unsigned seed = seed_get();
    int kills = kills_wanted();
    fprintf(stderr, "  seed %u (SLUICE_SEED), %d kills, %u shards\n", seed, kills, shards);
    if (parked_mode) {
        char budget[16];
        snprintf(budget, sizeof(budget), "%u", PARKED_OPEN_FILES_MAX);
        setenv("SLUICE_OPEN_FILES_MAX", budget, 1); /* kept: every restart inherits it */
        fprintf(stderr, "  open_files_max %s: shards parked and reopened throughout\n", budget);
    }
    /* The zeroed run-ahead from a shard's first 16 KiB on (the default waits
     * for 1 MiB of traffic), so kills land on zero tails and zero writes in
     * flight; SLUICE_SEGMENT_PREZERO_BYTES=0 runs the loop without it. */
    setenv("SLUICE_SEGMENT_PREZERO_BYTES", "64KiB", 0);
    srand(seed);
    test_t0_ms = it_mono_ms();
    CHECK_EQ(it_broker_start(&broker, "always"), 0);
    uint32_t fds_empty = it_broker_fds(&broker), fds_max = 0, fds_min = UINT32_MAX;
    sluice_client *c = NULL;
    CHECK_EQ(it_connect(&broker, &c), SL_OK);
    main_client = c;
    CHECK_EQ(it_create_stream(c, STREAM, shards), SL_OK);
    struct sluice_queue_group_opts qo = {.visibility_timeout_ms = QUEUE_VISIBILITY_MS};
    CHECK_EQ(sluice_queue_group_create(c, STREAM, GROUP, &qo), SL_OK);
    sluice_client_free(c); /* the main thread's client would only sit through the outages */
    c = main_client = NULL;

    pthread_t prod_th[PRODUCERS], cursor_th, queue_th;
    for (uint32_t p = 0; p < PRODUCERS; p++) {
        CHECK_EQ(pthread_create(&prod_th[p], NULL, produce_loop, (void *)(uintptr_t)p), 0);
    }
    CHECK_EQ(pthread_create(&cursor_th, NULL, cursor_loop, NULL), 0);
    CHECK_EQ(pthread_create(&queue_th, NULL, queue_loop, NULL), 0);

    int64_t rec_max = 0, rec_sum = 0;
    int done_kills = 0;
    for (int k = 0; k < kills; k++) {
        it_sleep_ms(UPTIME_MIN_MS + (uint32_t)rand() % UPTIME_SPAN_MS);
        uint32_t fds = it_broker_fds(&broker); /* under load, just before the kill */
        fds_max = fds > fds_max ? fds : fds_max;
        fds_min = fds < fds_min ? fds : fds_min;
        kill_at_ms[k] = it_mono_ms() - test_t0_ms;
        CHECK_EQ(it_broker_kill9(&broker), 0); /* -1: the broker died on its own */
        it_sleep_ms((uint32_t)rand() % 30u);
        int64_t ms = restart_and_measure();
        CHECK(ms >= 0);
        up_at_ms[k] = it_mono_ms() - test_t0_ms;
        rec_max = ms > rec_max ? ms : rec_max;
        rec_sum += ms;
        done_kills++;
        if (k % 10 == 9 || k + 1 == kills) {
            uint32_t n = 0;
            for (uint32_t p = 0; p < PRODUCERS; p++) {
                n += atomic_load(&produced[p]);
            }
            fprintf(stderr, "  kill %d: recovered in %" PRId64 " ms; %u records produced\n",
                    k + 1, ms, n);
        }
    }
    it_sleep_ms(500);
    atomic_store(&stop_producing, 1);
    uint64_t retries = 0, dup_batches = 0;
    for (uint32_t p = 0; p < PRODUCERS; p++) {
        pthread_join(prod_th[p], NULL);
        CHECK_EQ(producer_rc[p], SL_OK);
        retries += producer_stats[p].retries;
        dup_batches += producer_stats[p].duplicates;
    }

    CHECK_EQ(it_connect(&broker, &c), SL_OK);
    main_client = c;
    struct sluice_stream_info *info = NULL;
    CHECK_EQ(sluice_stream_describe(c, STREAM, &info), SL_OK);
    main_info = info;
    CHECK_EQ(info->shards_len, shards);
    uint64_t tail_total = 0;
    for (uint32_t s = 0; s < shards; s++) {
        CHECK_EQ(info->shards[s].status, SL_OK);
        CHECK_EQ(info->shards[s].first_seq, 0);
        tail_total += info->shards[s].next_seq;
    }
    int64_t total = read_all(c, info, final_read);
    CHECK(total >= 0);
    CHECK_EQ((uint64_t)total, tail_total);

    uint64_t acked = 0, dup_acked = 0, dup_unacked = 0, dup_copies = 0, failed_stored = 0;
    uint64_t lost = check_acknowledged(final_read, &acked, &dup_acked, &dup_unacked, &dup_copies,
                                       &failed_stored);
    uint64_t pending = 0, failed = 0, produced_total = 0;
    for (uint32_t p = 0; p < PRODUCERS; p++) {
        uint32_t n = atomic_load(&produced[p]);
        produced_total += n;
        for (uint32_t i = 0; i < n; i++) {
            unsigned char st = atomic_load(&rec_status[p][i]);
            pending += st == ST_PENDING;
            failed += st == ST_FAILED;
        }
    }

    int cursor_rc = finish_cursor(cursor_th, info);
    uint64_t cursor_diff = 0, cursor_total = 0;
    for (uint32_t s = 0; s < shards; s++) {
        for (uint64_t q = 0; q < cursor_seen[s].len; q++) {
            cursor_total++;
            cursor_diff += cursor_seen[s].v[q] != codes_get(&final_read[s], q);
        }
    }
    int queue_rc = finish_queue(queue_th, tail_total);
    uint64_t queue_diff = 0, queue_unknown = 0;
    uint64_t queue_missing = check_queue(c, info, final_read, &queue_diff, &queue_unknown);
    if (queue_missing > 0) {
        for (int k = 0; k < done_kills; k++) {
            fprintf(stderr, "  kill %d at +%" PRIu64 " ms, up again at +%" PRIu64 " ms\n",
                    k + 1, kill_at_ms[k], up_at_ms[k]);
        }
    }

    fprintf(stderr,
            "  kills: %d; recovery: max %" PRId64 " ms, avg %" PRId64 " ms\n"
            "  produced %" PRIu64 ": %" PRIu64 " acknowledged, %" PRIu64 " failed (first: %s), "
            "%" PRIu64 " unreported; %" PRIu64 " retries, %" PRIu64 " duplicate batches "
            "recognised by the broker\n"
            "  stored %" PRId64 "; %" PRIu64 " acknowledged missing; duplicates: %" PRIu64
            " extra copies (%" PRIu64 " of acknowledged records, %" PRIu64
            " of unacknowledged); %" PRIu64 " failed records stored\n"
            "  cursor: %" PRIu64 " read, %" PRIu64 " gaps, %" PRIu64 " bad, %" PRIu64
            " differ from the final read, %" PRIu64 " errors (first: %s %s), %" PRIu64
            " retried polls\n"
            "  queue: %" PRIu64 " deliveries, %" PRIu64 " records acked (confirmed) of %" PRIu64
            ", %" PRIu64 " with an ack whose answer was lost and not delivered again (%" PRIu64
            " were), %" PRIu64 " delivered again after a confirmed ack%s%s%s, %" PRIu64
            " bad, %" PRIu64 " differ, %" PRIu64 " stale acks, %" PRIu64
            " errors (first: %s %s)\n",
            done_kills, rec_max, done_kills > 0 ? rec_sum / done_kills : 0, produced_total,
            acked, failed, sl_errname(atomic_load(&first_delivery_err)), pending, retries,
            dup_batches, total, lost, dup_copies, dup_acked, dup_unacked, failed_stored,
            cursor_total, cursor_gaps, cursor_bad, cursor_diff, cursor_errors,
            sl_errname(cursor_first_err), cursor_first_msg, cursor_closed, queue_delivered,
            (uint64_t)atomic_load(&queue_acked_distinct), tail_total, queue_unknown,
            queue_redelivered_after_unknown, queue_redelivered_after_ack,
            queue_redelivered_after_ack ? " (first: " : "",
            queue_first_redelivery, queue_redelivered_after_ack ? ")" : "", queue_bad,
            queue_diff + queue_mismatch, queue_stale_acks, queue_errors,
            sl_errname(queue_first_err), queue_first_msg);

    /* Once everything is quiet the budget holds (busy shards cannot be parked: under load,
     * after a restart especially, when the producers resend to many shards at once, the
     * broker may hold more for a while). */
    it_sleep_ms(1500);
    uint32_t fds_quiet = it_broker_fds(&broker);
    fprintf(stderr,
            "  descriptors: %u-%u under load, %u once quiet (%u with no stream; %u shards)\n",
            fds_min, fds_max, fds_quiet, fds_empty, shards);
    if (parked_mode) {
        /* 3 a shard would be 96 for 32 shards: within the budget, the quiet ones are parked */
        CHECK(fds_quiet <= fds_empty + PARKED_OPEN_FILES_MAX + PARKED_FD_SLACK);
    }
    CHECK_EQ(pending, 0);
    CHECK(acked > 0);
    CHECK_EQ(lost, 0);
    CHECK_EQ(dup_acked, 0);
    CHECK_EQ(cursor_rc, 0);
    CHECK_EQ(cursor_gaps + cursor_bad + cursor_diff + cursor_errors, 0);
    CHECK_EQ(queue_redelivered_after_ack, 0);
    CHECK_EQ(queue_bad + queue_diff + queue_mismatch + queue_errors, 0);
    CHECK_EQ(queue_rc, 0);
    CHECK_EQ(queue_missing, 0);

    sluice_stream_info_free(info);
    main_info = NULL;
    sluice_client_free(c);
    main_client = NULL;
    CHECK_EQ(it_broker_stop(&broker), 0);
    it_broker_cleanup(&broker);
}

int main(void)
{
    int rc = it_preflight();
    if (rc != 0) {
        return rc;
    }
    const char *pm = getenv("SLUICE_CRASH_PARKED");
    parked_mode = pm != NULL && strcmp(pm, "1") == 0;
    shards = parked_mode ? PARKED_SHARDS : SHARDS_DEFAULT;
    RUN(crash_loop);
    sluice_stream_info_free(main_info); /* left by a failed check */
    sluice_client_free(main_client);
    for (uint32_t s = 0; s < SHARDS_MAX; s++) {
        codes_free(&final_read[s]);
        codes_free(&cursor_seen[s]);
        codes_free(&queue_code[s]);
        codes_free(&queue_acked[s]);
    }
    TEST_END();
}
