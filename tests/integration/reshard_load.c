/* reshard_load.c - #16's integration scenario on the real broker: four producers write 10,000
 * keys without stopping while the stream goes 4 -> 8 -> 3 -> 16 open shards, and a consumer
 * group and an ordered queue group read throughout.
 *
 * Covers: 4 libsluice producers (each with its own client and its own way of batching:
 * linger, zstd, one batch in flight per shard, no linger with 8 in flight) each own a
 * quarter of the keys and write, pass after pass, one record per key whose value names
 * (key, per-key counter); a control thread changes the shard count with
 * sluice_stream_reshard (4 -> 8, 8 -> 3) and the CLI's `stream reshard` (3 -> 16), waiting
 * between changes until every producer has had a whole pass acknowledged since the last one
 * (so records go to every layout, however slow the machine). Readers, started before the first
 * record: a consumer group of 2 members (each its own client and thread, auto-commit) and an
 * ordered queue group with 2 competing receivers (each its own client and thread). Checked:
 *  - every record produced was acknowledged (no delivery error) and records were re-routed
 *    off closed shards; the stream holds exactly the acknowledged records (per shard, its
 *    sequences from describe add up to them: no copy from a retry);
 *  - the group reads every acknowledged record exactly once, where its delivery said
 *    (shard, sequence), each key's records in order without a hole across the members, each
 *    shard's sequences without a gap across hand-overs, and no record of a shard before the
 *    group had read every record of each of its ancestors (the lineage from describe); both
 *    members read; afterwards the group's lag is 0 on every shard, closed ones included;
 *  - the ordered queue group delivers every acknowledged record exactly once (leases of 10
 *    minutes never end here, so no documented redelivery - an ended lease, a nack - applies:
 *    delivery_count 1 and every ack OK), a key's next record only after its previous one's
 *    ack was sent, and no record of a shard before every record of each of its ancestors
 *    was acknowledged; both receivers receive; afterwards nothing is visible or in flight.
 * The order checks run as records arrive, under a lock shared by the readers of one kind,
 * in an order that follows the broker's: a member logs what poll returned before it polls
 * (and so commits) again; a receiver logs a delivery before it acks it.
 *
 * Quick size (CI): a few seconds of load, ~80,000 records released (~6 s in all), ~200,000
 * sanitized (~1.5 min, mostly the ordered queue group draining its backlog).
 * SLUICE_IT_LONG=1: 3 s steps and three more cycles 16 -> 8 -> 3 -> 16, ~1 million records
 * (~1 min released, ~2.5 min sanitized).
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define KEYS       10000u
#define PRODUCERS  4u
#define MEMBERS    2u    /* consumer group members */
#define RECEIVERS  2u    /* queue group receivers */
#define SHARDS_MAX 1024u /* shard ids a stream with queue groups may reach */
/* A producer starts pass c no earlier than c * PASS_MS after its start: 25,000 records/s
 * for the four, half that sanitized (where the ordered queue group drains a backlog over
 * 10,000 keys at ~8,000/s). */
#define PASS_MS (400u * IT_SLOWDOWN)
#define CNT_MAX 512u /* passes at most: (key, counter) -> record counter * KEYS + key */
#define RECORDS (KEYS * CNT_MAX)
_Static_assert(KEYS % PRODUCERS == 0, "each producer owns as many keys");
_Static_assert(SHARDS_MAX <= UINT16_MAX, "a shard id fits the per-record tables");
#define LEASE_MS 600000u
/* While producers run, a reader pauses this long before each poll or receive of at most
 * READ_BATCH records: the two readers of a kind take at most ~12,800 records/s against the
 * producers' 25,000 (sanitized: the readers are slower too), so a backlog builds and every change
 * finds parents with records still unread - where reading a child too early would show (a broker
 * assigning children at once fails the run). Once producers stopped they drain DRAIN_BATCH at a
 * time. */
#define READ_BATCH    256u
#define READ_PAUSE_MS 40u
#define DRAIN_BATCH   2000u
#define WAIT_MS       (120000u * IT_SLOWDOWN) /* a hang guard: no progress for this long */

static struct it_broker broker;
static const char *STREAM = "load";
static const char *GROUP = "load-group";
static const char *QGROUP = "load-ordered";

/* ---- producers ---- */

static uint16_t *ack_shard; /* per record: where its delivery said it is stored */
static uint32_t *ack_seq;
static atomic_uint_fast64_t acked_ok, acked_err;
static atomic_int first_err;
static atomic_int stop_producing;

struct producer {
    uint32_t id; /* owns the keys k with k % PRODUCERS == id */
    sluice_client *cl;
    sluice_producer *p;
    atomic_uint passes;       /* passes handed to sluice_produce */
    atomic_uint acked_passes; /* passes whose every record was acknowledged */
    atomic_uint pass_left[CNT_MAX];
    int failed;
};

static struct producer prods[PRODUCERS];

/* A pass's records are contiguous: the per-record tables are touched only as far as the
 * producers got. */
static uint32_t rec_of(uint32_t key, uint32_t cnt)
{
    return cnt * KEYS + key;
}

static uint32_t key_of(uint32_t r)
{
    return r % KEYS;
}

static uint32_t cnt_of(uint32_t r)
{
    return r / KEYS;
}

static int key_str(uint32_t key, char *out)
{
    return snprintf(out, 16, "key-%05u", key);
}

static int value_str(uint32_t key, uint32_t cnt, char *out, size_t cap)
{
    return snprintf(out, cap, "%u#%u#filler so batches are not all headers", key, cnt);
}

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    uint32_t r = (uint32_t)(uintptr_t)ctx;
    struct producer *pr = &prods[key_of(r) % PRODUCERS];
    if (err != SL_OK || shard >= SHARDS_MAX || seq >= UINT32_MAX) {
        int zero = 0;
        atomic_compare_exchange_strong(&first_err, &zero, err != SL_OK ? err : SL_EPROTO);
        atomic_fetch_add(&acked_err, 1);
        return;
    }
    ack_shard[r] = (uint16_t)shard;
    ack_seq[r] = (uint32_t)seq;
    atomic_fetch_add(&acked_ok, 1);
    /* a pass is acknowledged once all its records are; passes end in order per producer
     * only roughly, so acked_passes counts the leading run of finished ones */
    uint32_t cnt = cnt_of(r);
    if (atomic_fetch_sub(&pr->pass_left[cnt], 1) == 1) {
        uint32_t a = atomic_load(&pr->acked_passes);
        while (a < CNT_MAX && atomic_load(&pr->pass_left[a]) == 0 && a < atomic_load(&pr->passes)) {
            if (atomic_compare_exchange_weak(&pr->acked_passes, &a, a + 1)) {
                a++;
            }
        }
    }
}

/* Writes pass after pass at a steady pace - record j of pass c no earlier than (c + j /
 * per_pass) * PASS_MS after the start, so batches are in flight whenever a change lands -
 * and flat out when the machine cannot keep that pace. */
static void *producer_main(void *arg)
{
    struct producer *pr = arg;
    char key[16], value[96];
    uint64_t t0 = it_mono_ms();
    const uint32_t per_pass = KEYS / PRODUCERS;
    for (uint32_t c = 0; c < CNT_MAX && !atomic_load(&stop_producing); c++) {
        atomic_store(&pr->pass_left[c], per_pass);
        atomic_store(&pr->passes, c + 1);
        for (uint32_t j = 0; j < per_pass; j++) {
            if (j % 64 == 0) {
                uint64_t at = t0 + ((uint64_t)c * per_pass + j) * PASS_MS / per_pass;
                uint64_t now = it_mono_ms();
                if (now < at) {
                    it_sleep_ms((uint32_t)(at - now));
                }
            }
            uint32_t k = pr->id + j * PRODUCERS;
            int kl = key_str(k, key);
            int vl = value_str(k, c, value, sizeof(value));
            int rc = sluice_produce(pr->p, key, (size_t)kl, value, (size_t)vl, NULL, 0, on_delivery,
                                    (void *)(uintptr_t)rec_of(k, c));
            if (rc != SL_OK) {
                fprintf(stderr, "producer %u: produce: %s\n", pr->id, sluice_last_error());
                pr->failed = 1;
                return NULL;
            }
        }
    }
    return NULL;
}

/* Records produced by one producer: every key it owns, passes times. */
static uint64_t produced_total(void)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        n += (uint64_t)atomic_load(&prods[i].passes) * (KEYS / PRODUCERS);
    }
    return n;
}

/* The passes each producer has started now. */
static void passes_now(uint32_t *out)
{
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        out[i] = atomic_load(&prods[i].passes);
    }
}

/* Waits until every producer has had its pass number from[i] - the first it started after
 * the last change returned - acknowledged in full. */
static int wait_a_pass_each(const uint32_t *from)
{
    uint64_t deadline = it_mono_ms() + WAIT_MS;
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        while (atomic_load(&prods[i].acked_passes) < from[i] + 1) {
            if (prods[i].failed || atomic_load(&acked_err) != 0 || it_mono_ms() > deadline ||
                atomic_load(&prods[i].passes) >= CNT_MAX) {
                fprintf(stderr,
                        "producer %u: pass %u not acknowledged (%u started, %u acknowledged, "
                        "%" PRIu64 " delivery errors, the first %s)\n",
                        i, from[i], atomic_load(&prods[i].passes),
                        atomic_load(&prods[i].acked_passes), (uint64_t)atomic_load(&acked_err),
                        sluice_strerror(atomic_load(&first_err)));
                return -1;
            }
            it_sleep_ms(10);
        }
    }
    return 0;
}

/* ---- the lineage, from the final description ---- */

static uint64_t shard_total[SHARDS_MAX];        /* records per shard (next_seq - first_seq) */
static uint8_t anc[SHARDS_MAX][SHARDS_MAX / 8]; /* anc[s]: the ancestors of s, a bitset */
static int has_parent[SHARDS_MAX];

static int lineage_load(const struct sluice_stream_info *info)
{
    memset(anc, 0, sizeof(anc));
    memset(has_parent, 0, sizeof(has_parent));
    memset(shard_total, 0, sizeof(shard_total));
    if (info->shard_count > SHARDS_MAX || info->shards_len != info->shard_count) {
        fprintf(stderr, "describe: %u shard ids, %u described\n", info->shard_count,
                info->shards_len);
        return -1;
    }
    /* a parent's id is below its children's: one pass in id order collects ancestors */
    for (uint32_t id = 0; id < info->shard_count; id++) {
        const struct sluice_shard_info *s = NULL;
        for (uint32_t i = 0; i < info->shards_len; i++) {
            if (info->shards[i].shard == id) {
                s = &info->shards[i];
            }
        }
        if (s == NULL) {
            fprintf(stderr, "describe: shard %u missing\n", id);
            return -1;
        }
        shard_total[id] = s->next_seq - s->first_seq;
        for (uint32_t k = 0; k < s->parents_len; k++) {
            uint32_t p = s->parents[k];
            if (p >= id) {
                fprintf(stderr, "describe: shard %u has parent %u\n", id, p);
                return -1;
            }
            has_parent[id] = 1;
            anc[id][p / 8] |= (uint8_t)(1u << (p % 8));
            for (uint32_t b = 0; b < SHARDS_MAX / 8; b++) {
                anc[id][b] |= anc[p][b];
            }
        }
    }
    return 0;
}

/* No record of a shard before every record of each ancestor was taken: first[s] is the
 * per-shard count of records taken when s gave its first one (NULL: s gave none). */
static int lineage_ok(const char *who, uint64_t *const *first, uint32_t shards)
{
    int checked = 0;
    for (uint32_t s = 0; s < shards; s++) {
        if (first[s] == NULL || !has_parent[s]) {
            continue;
        }
        for (uint32_t a = 0; a < s; a++) {
            if ((anc[s][a / 8] & (1u << (a % 8))) && first[s][a] != shard_total[a]) {
                fprintf(stderr,
                        "%s: shard %u's first record came after %" PRIu64 " of the %" PRIu64
                        " records of its ancestor %u\n",
                        who, s, first[s][a], shard_total[a], a);
                return 0;
            }
        }
        checked++;
    }
    fprintf(stderr, "%s: %d children checked against their ancestors\n", who, checked);
    return checked > 0;
}

/* ---- what a reader kind saw (one lock per kind) ---- */

struct seen {
    const char *name;
    pthread_mutex_t mu;
    uint32_t *next_cnt;            /* per key: the counter expected next */
    uint32_t *done_cnt;            /* queue: per key, acks sent */
    uint16_t *read_shard;          /* per record */
    uint32_t *read_seq;            /* per record */
    uint64_t next_seq[SHARDS_MAX]; /* per shard: the sequence expected next (group) */
    uint64_t taken[SHARDS_MAX];    /* per shard: records read (group), acks sent (queue) */
    uint64_t *first[SHARDS_MAX];   /* per shard: taken[] when it gave its first record */
    uint64_t n;                    /* records read (group), delivered (queue) */
    uint64_t want;                 /* set once producing stopped */
    atomic_int stop;
    int bad;
};

static void seen_init(struct seen *sn, const char *name)
{
    memset(sn, 0, sizeof(*sn));
    sn->name = name;
    pthread_mutex_init(&sn->mu, NULL);
    sn->next_cnt = calloc(KEYS, sizeof(uint32_t));
    sn->done_cnt = calloc(KEYS, sizeof(uint32_t));
    sn->read_shard = calloc(RECORDS, sizeof(uint16_t));
    sn->read_seq = calloc(RECORDS, sizeof(uint32_t));
}

static void seen_fini(struct seen *sn)
{
    for (uint32_t s = 0; s < SHARDS_MAX; s++) {
        free(sn->first[s]);
    }
    free(sn->next_cnt);
    free(sn->done_cnt);
    free(sn->read_shard);
    free(sn->read_seq);
    pthread_mutex_destroy(&sn->mu);
}

/* A reader failed: the others of its kind stop too. */
static void seen_fail(struct seen *sn)
{
    pthread_mutex_lock(&sn->mu);
    sn->bad = 1;
    pthread_mutex_unlock(&sn->mu);
}

/* A reader's turn: 0 when its kind has read everything wanted (or failed), else how many
 * records to take now - a few, after a pause, while producers run; many once they stopped.
 * Fails the kind when it made no progress for WAIT_MS (a hang guard, not a timing check). */
static uint32_t reader_turn(struct seen *sn, const char *who, uint64_t *last_n,
                            uint64_t *idle_since)
{
    pthread_mutex_lock(&sn->mu);
    int done = sn->bad || (atomic_load(&sn->stop) && sn->n >= sn->want);
    uint64_t n = sn->n, want = sn->want;
    pthread_mutex_unlock(&sn->mu);
    if (done) {
        return 0;
    }
    uint64_t now = it_mono_ms();
    if (n != *last_n || !atomic_load(&sn->stop)) {
        *last_n = n;
        *idle_since = now;
    } else if (now - *idle_since > WAIT_MS) {
        fprintf(stderr, "%s: no progress for %u s: %s has %" PRIu64 " of %" PRIu64 " records\n",
                who, WAIT_MS / 1000, sn->name, n, want);
        seen_fail(sn);
        return 0;
    }
    if (!atomic_load(&sn->stop)) {
        it_sleep_ms(READ_PAUSE_MS);
        return READ_BATCH;
    }
    return DRAIN_BATCH;
}

/* Under sn->mu. Returns the record number, or UINT32_MAX after reporting a problem. */
static uint32_t seen_parse(struct seen *sn, const char *who, uint32_t shard, uint64_t seq,
                           const uint8_t *key, uint32_t key_len, const uint8_t *value,
                           uint32_t value_len)
{
    char buf[128], want_key[16], want_value[96];
    unsigned k = KEYS, c = CNT_MAX;
    if (value_len < sizeof(buf)) {
        memcpy(buf, value, value_len);
        buf[value_len] = '\0';
        if (sscanf(buf, "%u#%u#", &k, &c) != 2) {
            k = KEYS;
        }
    }
    if (k >= KEYS || c >= CNT_MAX || shard >= SHARDS_MAX || seq >= UINT32_MAX) {
        fprintf(stderr, "%s: a record not produced here (shard %u seq %" PRIu64 ")\n", who, shard,
                seq);
        sn->bad = 1;
        return UINT32_MAX;
    }
    int kl = key_str(k, want_key);
    int vl = value_str(k, c, want_value, sizeof(want_value));
    if (key_len != (uint32_t)kl || memcmp(key, want_key, key_len) != 0 ||
        value_len != (uint32_t)vl || memcmp(value, want_value, value_len) != 0) {
        fprintf(stderr, "%s: key or value of (%u, %u) differ from what was produced\n", who, k, c);
        sn->bad = 1;
        return UINT32_MAX;
    }
    if (sn->next_cnt[k] != c) {
        fprintf(stderr, "%s: key %u's record %u (shard %u seq %" PRIu64 ") when %u was next: %s\n",
                who, k, c, shard, seq, sn->next_cnt[k],
                c < sn->next_cnt[k] ? "read twice or out of order" : "a hole");
        sn->bad = 1;
        return UINT32_MAX;
    }
    sn->next_cnt[k] = c + 1;
    uint32_t r = rec_of(k, c);
    sn->read_shard[r] = (uint16_t)shard;
    sn->read_seq[r] = (uint32_t)seq;
    if (sn->first[shard] == NULL) {
        sn->first[shard] = malloc(sizeof(sn->taken));
        if (sn->first[shard] == NULL) {
            sn->bad = 1;
            return UINT32_MAX;
        }
        memcpy(sn->first[shard], sn->taken, sizeof(sn->taken));
    }
    sn->n++;
    return r;
}

/* ---- the consumer group: 2 members ---- */

static struct seen grp;
static atomic_uint_fast64_t rebalances;

struct member {
    uint32_t id;
    sluice_client *cl;
    uint64_t n; /* records this member read */
    int failed;
};

static void on_rebalance(void *ctx, const uint32_t *shards, size_t n, int lost)
{
    (void)ctx;
    (void)shards;
    (void)n;
    atomic_fetch_add(&rebalances, 1);
    if (lost) {
        /* the member's session ended: its shards were taken from it uncommitted, which this
         * test's sessions (minutes) never allow - the exactly-once check would then fail */
        fprintf(stderr, "group: a member lost its shards (session expired)\n");
        seen_fail(&grp);
    }
}

static void *member_main(void *arg)
{
    struct member *m = arg;
    char who[32];
    snprintf(who, sizeof(who), "group member %u", m->id);
    struct sluice_consumer_opts o = {.start = {.kind = SLUICE_TRIM_HORIZON},
                                     .auto_commit_ms = 100,
                                     .session_timeout_ms = 120000,
                                     .on_assigned = on_rebalance,
                                     .on_revoked = on_rebalance};
    sluice_consumer *c = NULL;
    if (sluice_consumer_new(m->cl, STREAM, GROUP, &o, &c) != SL_OK) {
        fprintf(stderr, "%s: %s\n", who, sluice_last_error());
        m->failed = 1;
        seen_fail(&grp);
        return NULL;
    }
    struct sluice_record *recs = malloc(DRAIN_BATCH * sizeof(*recs));
    uint64_t last_n = 0, idle_since = 0;
    for (; recs != NULL;) {
        uint32_t max = reader_turn(&grp, who, &last_n, &idle_since);
        if (max == 0) {
            break;
        }
        size_t n = 0;
        int rc = sluice_consumer_poll(c, recs, max, &n, 100);
        if (rc != SL_OK) {
            fprintf(stderr, "%s: poll: %s\n", who, sluice_last_error());
            m->failed = 1;
            seen_fail(&grp);
            break;
        }
        /* logged before the next poll, which is where this member commits and hands shards
         * over: whoever reads on from here logs after */
        pthread_mutex_lock(&grp.mu);
        for (size_t i = 0; i < n && !grp.bad; i++) {
            const struct sluice_record *rec = &recs[i];
            uint32_t r = seen_parse(&grp, who, rec->shard, rec->seq, rec->key, rec->key_len,
                                    rec->value, rec->value_len);
            if (r == UINT32_MAX) {
                break;
            }
            uint32_t s = rec->shard;
            if (grp.taken[s] > 0 && rec->seq != grp.next_seq[s]) {
                fprintf(stderr, "%s: shard %u seq %" PRIu64 " when %" PRIu64 " was next\n", who, s,
                        rec->seq, grp.next_seq[s]);
                grp.bad = 1;
                break;
            }
            grp.next_seq[s] = rec->seq + 1;
            grp.taken[s]++;
            m->n++;
        }
        pthread_mutex_unlock(&grp.mu);
    }
    if (!m->failed && !grp.bad && sluice_consumer_commit(c) != SL_OK) {
        fprintf(stderr, "%s: commit: %s\n", who, sluice_last_error());
        m->failed = 1;
        seen_fail(&grp);
    }
    sluice_consumer_free(c);
    free(recs);
    return NULL;
}

/* ---- the ordered queue group: 2 receivers ---- */

static struct seen que;

struct receiver {
    uint32_t id;
    sluice_client *cl;
    uint64_t n;
    int failed;
};

static void *receiver_main(void *arg)
{
    struct receiver *q = arg;
    char who[32];
    snprintf(who, sizeof(who), "queue receiver %u", q->id);
    const char **receipts = malloc(DRAIN_BATCH * sizeof(*receipts));
    uint32_t *recs = malloc(DRAIN_BATCH * sizeof(*recs));
    int *results = malloc(DRAIN_BATCH * sizeof(*results));
    uint64_t last_n = 0, idle_since = 0;
    for (; receipts != NULL && recs != NULL && results != NULL;) {
        uint32_t max = reader_turn(&que, who, &last_n, &idle_since);
        if (max == 0) {
            break;
        }
        struct sluice_message *m = NULL;
        size_t n = 0;
        if (sluice_queue_receive(q->cl, STREAM, QGROUP, max, 100, LEASE_MS, &m, &n) != SL_OK) {
            fprintf(stderr, "%s: receive: %s\n", who, sluice_last_error());
            q->failed = 1;
            seen_fail(&que);
            break;
        }
        /* a key's next record comes only once this one's ack was processed, which is after
         * the ack is logged below: so its delivery finds done_cnt at its counter */
        pthread_mutex_lock(&que.mu);
        size_t ok = 0;
        for (size_t i = 0; i < n && !que.bad; i++, ok++) {
            const struct sluice_message *msg = &m[i];
            uint32_t r = seen_parse(&que, who, msg->shard, msg->seq, msg->key, msg->key_len,
                                    msg->value, msg->value_len);
            if (r == UINT32_MAX) {
                break;
            }
            if (msg->delivery_count != 1 || que.done_cnt[key_of(r)] != cnt_of(r)) {
                fprintf(stderr,
                        "%s: key %u's record %u delivered (count %u) when %u of its records were "
                        "acknowledged\n",
                        who, key_of(r), cnt_of(r), msg->delivery_count, que.done_cnt[key_of(r)]);
                que.bad = 1;
                break;
            }
            receipts[i] = msg->receipt;
            recs[i] = r;
        }
        for (size_t i = 0; i < ok; i++) {
            que.done_cnt[key_of(recs[i])]++;
            que.taken[m[i].shard]++;
        }
        q->n += ok;
        pthread_mutex_unlock(&que.mu);
        if (ok > 0 && sluice_queue_ack(q->cl, STREAM, QGROUP, receipts, ok, results) != SL_OK) {
            fprintf(stderr, "%s: ack: %s\n", who, sluice_last_error());
            q->failed = 1;
            seen_fail(&que);
        }
        sluice_messages_free(m, n);
        if (q->failed) {
            break;
        }
    }
    free(receipts);
    free(recs);
    free(results);
    return NULL;
}

/* ---- the changes ---- */

static int change(sluice_client *admin, uint32_t open_shards, int by_cli)
{
    uint64_t t0 = it_mono_ms();
    if (by_cli) {
        char n[16], out[4096];
        snprintf(n, sizeof(n), "%u", open_shards);
        const char *args[] = {"--broker", broker.addr, "stream", "reshard",
                              STREAM,     "--shards",  n,        NULL};
        int rc = it_run_cli(&broker, args, NULL, 1, out, sizeof(out));
        char want[48];
        snprintf(want, sizeof(want), "; %u open shards", open_shards);
        if (rc != 0 || strstr(out, want) == NULL) {
            fprintf(stderr, "sluice stream reshard --shards %u: exit %d: %s\n", open_shards, rc,
                    out);
            return -1;
        }
    } else {
        struct sluice_reshard_result *res = NULL;
        if (sluice_stream_reshard(admin, STREAM, open_shards, &res) != SL_OK) {
            fprintf(stderr, "reshard to %u: %s\n", open_shards, sluice_last_error());
            return -1;
        }
        int ok = res->stream->open_shards == open_shards;
        sluice_reshard_result_free(res);
        if (!ok) {
            return -1;
        }
    }
    fprintf(stderr, "reshard to %u open shards (%s): %" PRIu64 " ms\n", open_shards,
            by_cli ? "CLI" : "library", it_mono_ms() - t0);
    return 0;
}

TEST(four_producers_group_and_ordered_queue_through_4_8_3_16)
{
    int lng = getenv("SLUICE_IT_LONG") != NULL;
    uint32_t step_ms = (lng ? 3000u : 500u) * IT_SLOWDOWN;
    uint32_t cycles = lng ? 4 : 1; /* 4 -> 8 -> 3 -> 16, then 16 -> 8 -> 3 -> 16 */
    sluice_client *admin = NULL;
    CHECK_EQ(it_connect(&broker, &admin), SL_OK);
    CHECK_EQ(it_create_stream(admin, STREAM, 4), SL_OK);
    struct sluice_queue_group_opts qo = {.ordered = 1, .max_inflight = 20000};
    CHECK_EQ(sluice_queue_group_create(admin, STREAM, QGROUP, &qo), SL_OK);

    seen_init(&grp, "consumer group");
    seen_init(&que, "ordered queue group");
    struct member mem[MEMBERS] = {0};
    struct receiver rcv[RECEIVERS] = {0};
    pthread_t mt[MEMBERS], rt[RECEIVERS], pt[PRODUCERS];
    for (uint32_t i = 0; i < MEMBERS; i++) {
        mem[i].id = i;
        CHECK_EQ(it_connect(&broker, &mem[i].cl), SL_OK);
        CHECK_EQ(pthread_create(&mt[i], NULL, member_main, &mem[i]), 0);
    }
    for (uint32_t i = 0; i < RECEIVERS; i++) {
        rcv[i].id = i;
        CHECK_EQ(it_connect(&broker, &rcv[i].cl), SL_OK);
        CHECK_EQ(pthread_create(&rt[i], NULL, receiver_main, &rcv[i]), 0);
    }
    /* four ways of batching, each re-routing its own way: lingering batches, zstd ones, one
     * batch at a time per shard, and batches sent whenever a shard has none in flight */
    const struct sluice_producer_opts po[PRODUCERS] = {
        {.linger_ms = 5, .batch_bytes = 64u << 10},
        {.linger_ms = 2, .batch_bytes = 16u << 10, .compression = SLUICE_COMPRESSION_ZSTD},
        {.linger_ms = 5, .max_inflight_batches = 1},
        {.linger_ms = SLUICE_LINGER_NONE, .max_inflight_batches = SLUICE_INFLIGHT_BATCHES_MAX},
    };
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        struct sluice_producer_opts o = po[i];
        o.block_when_full = 1;
        o.buffer_bytes = 16u << 20;
        prods[i].id = i;
        CHECK_EQ(it_connect(&broker, &prods[i].cl), SL_OK);
        CHECK_EQ(sluice_producer_new(prods[i].cl, STREAM, &o, &prods[i].p), SL_OK);
        CHECK_EQ(pthread_create(&pt[i], NULL, producer_main, &prods[i]), 0);
    }

    /* the changes, each once every producer had a pass acknowledged in the layout before */
    uint32_t from[PRODUCERS] = {0};
    int rc = 0;
    uint32_t n_changes = 0;
    for (uint32_t cy = 0; cy < cycles && rc == 0; cy++) {
        const uint32_t targets[] = {8u, 3u, 16u};
        for (uint32_t t = 0; t < 3 && rc == 0; t++) {
            it_sleep_ms(step_ms);
            rc = wait_a_pass_each(from);
            if (rc == 0) {
                rc = change(admin, targets[t], t == 2);
                n_changes++;
                passes_now(from);
            }
        }
    }
    /* and a pass acknowledged by every producer in the last layout */
    it_sleep_ms(step_ms);
    if (rc == 0) {
        rc = wait_a_pass_each(from);
    }
    atomic_store(&stop_producing, 1);
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        pthread_join(pt[i], NULL);
    }
    struct sluice_producer_stats sum = {0};
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        CHECK_EQ(prods[i].failed, 0);
        CHECK_EQ(sluice_producer_flush(prods[i].p, WAIT_MS), SL_OK);
        struct sluice_producer_stats st;
        sluice_producer_stats(prods[i].p, &st);
        sum.records_sent += st.records_sent;
        sum.rerouted += st.rerouted;
        sum.layout_refreshes += st.layout_refreshes;
        sum.retries += st.retries;
        sum.duplicates += st.duplicates;
    }
    uint64_t n = produced_total();
    fprintf(stderr,
            "%u changes; produced %" PRIu64 " records over %u keys: %" PRIu64
            " acknowledged, %" PRIu64 " failed, %" PRIu64 " re-routed, %" PRIu64
            " layout refreshes, %" PRIu64 " retries, %" PRIu64 " duplicates\n",
            n_changes, n, KEYS, (uint64_t)atomic_load(&acked_ok), (uint64_t)atomic_load(&acked_err),
            sum.rerouted, sum.layout_refreshes, sum.retries, sum.duplicates);
    CHECK_EQ(rc, 0);
    CHECK_EQ(atomic_load(&acked_err), 0);
    CHECK_EQ(atomic_load(&acked_ok), n);
    CHECK(sum.rerouted > 0);

    /* the readers drain what was acknowledged */
    pthread_mutex_lock(&grp.mu);
    grp.want = n;
    pthread_mutex_unlock(&grp.mu);
    atomic_store(&grp.stop, 1);
    pthread_mutex_lock(&que.mu);
    que.want = n;
    pthread_mutex_unlock(&que.mu);
    atomic_store(&que.stop, 1);
    uint64_t t_drain = it_mono_ms();
    for (uint64_t t_print = t_drain + 10000;;) { /* progress, for a slow drain's log */
        uint64_t g_n, q_n;
        int g_end, q_end;
        pthread_mutex_lock(&grp.mu);
        g_n = grp.n;
        g_end = grp.bad || g_n >= n;
        pthread_mutex_unlock(&grp.mu);
        pthread_mutex_lock(&que.mu);
        q_n = que.n;
        q_end = que.bad || q_n >= n;
        pthread_mutex_unlock(&que.mu);
        int threads_gone = 1;
        for (uint32_t i = 0; i < MEMBERS; i++) {
            threads_gone &= mem[i].failed;
        }
        if ((g_end && q_end) || threads_gone) {
            break;
        }
        if (it_mono_ms() >= t_print) {
            fprintf(stderr,
                    "draining, %" PRIu64 " s: the group read %" PRIu64
                    ", the queue group delivered %" PRIu64 " of %" PRIu64 "\n",
                    (it_mono_ms() - t_drain) / 1000, g_n, q_n, n);
            t_print += 10000;
        }
        it_sleep_ms(50);
    }
    for (uint32_t i = 0; i < MEMBERS; i++) {
        pthread_join(mt[i], NULL);
    }
    for (uint32_t i = 0; i < RECEIVERS; i++) {
        pthread_join(rt[i], NULL);
    }
    fprintf(stderr,
            "drained in %" PRIu64 " ms: the group read %" PRIu64 " (members %" PRIu64 ", %" PRIu64
            "; %" PRIu64 " rebalance callbacks), the ordered queue group delivered %" PRIu64
            " (receivers %" PRIu64 ", %" PRIu64 ")\n",
            it_mono_ms() - t_drain, grp.n, mem[0].n, mem[1].n, (uint64_t)atomic_load(&rebalances),
            que.n, rcv[0].n, rcv[1].n);
    struct seen *kinds[] = {&grp, &que};
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(kinds[i]->bad, 0);
        CHECK_EQ(kinds[i]->n, n);
    }
    for (uint32_t i = 0; i < MEMBERS; i++) {
        CHECK_EQ(mem[i].failed, 0);
        CHECK(mem[i].n > 0);
    }
    for (uint32_t i = 0; i < RECEIVERS; i++) {
        CHECK_EQ(rcv[i].failed, 0);
        CHECK(rcv[i].n > 0);
    }

    /* every key complete, every record read where it was acknowledged */
    uint32_t passes[PRODUCERS];
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        passes[i] = atomic_load(&prods[i].passes);
    }
    for (uint32_t k = 0; k < KEYS; k++) {
        uint32_t want = passes[k % PRODUCERS];
        for (int i = 0; i < 2; i++) {
            if (kinds[i]->next_cnt[k] != want) {
                fprintf(stderr, "%s: key %u: %u of its %u records\n", kinds[i]->name, k,
                        kinds[i]->next_cnt[k], want);
                CHECK(0);
            }
        }
        for (uint32_t c = 0; c < want; c++) {
            uint32_t r = rec_of(k, c);
            for (int i = 0; i < 2; i++) {
                if (kinds[i]->read_shard[r] != ack_shard[r] ||
                    kinds[i]->read_seq[r] != ack_seq[r]) {
                    fprintf(stderr, "%s: key %u's record %u read at %u/%u, acknowledged at %u/%u\n",
                            kinds[i]->name, k, c, kinds[i]->read_shard[r], kinds[i]->read_seq[r],
                            ack_shard[r], ack_seq[r]);
                    CHECK(0);
                }
            }
        }
    }

    /* the lineage: the stream holds exactly the acknowledged records; children after parents */
    struct sluice_stream_info *info = NULL;
    CHECK_EQ(sluice_stream_describe(admin, STREAM, &info), SL_OK);
    CHECK_EQ(info->open_shards, 16);
    int loaded = lineage_load(info);
    uint32_t shards = info->shard_count;
    sluice_stream_info_free(info);
    CHECK_EQ(loaded, 0);
    uint64_t stored = 0;
    for (uint32_t s = 0; s < shards; s++) {
        stored += shard_total[s];
        for (int i = 0; i < 2; i++) {
            if (kinds[i]->taken[s] != shard_total[s]) {
                fprintf(stderr, "%s: shard %u: %" PRIu64 " of its %" PRIu64 " records\n",
                        kinds[i]->name, s, kinds[i]->taken[s], shard_total[s]);
                CHECK(0);
            }
        }
    }
    fprintf(stderr, "the stream has %u shard ids, %" PRIu64 " records\n", shards, stored);
    CHECK_EQ(stored, n);
    CHECK(lineage_ok(grp.name, grp.first, shards));
    CHECK(lineage_ok(que.name, que.first, shards));

    /* what the broker says afterwards: no lag, nothing left in the queue group */
    struct sluice_shard_lag *lag = NULL;
    size_t nlag = 0;
    CHECK_EQ(sluice_group_lag(admin, GROUP, STREAM, &lag, &nlag), SL_OK);
    uint64_t behind = 0;
    for (size_t i = 0; i < nlag; i++) {
        behind += lag[i].records_behind;
    }
    free(lag);
    CHECK_EQ(nlag, shards);
    CHECK_EQ(behind, 0);
    struct sluice_queue_stats qs = {0};
    CHECK_EQ(sluice_queue_stats(admin, STREAM, QGROUP, &qs), SL_OK);
    uint64_t left = qs.visible + qs.inflight + qs.delayed + qs.dead_lettered;
    sluice_queue_stats_fini(&qs);
    CHECK_EQ(left, 0);

    for (uint32_t i = 0; i < PRODUCERS; i++) {
        sluice_producer_free(prods[i].p);
        sluice_client_free(prods[i].cl);
    }
    for (uint32_t i = 0; i < MEMBERS; i++) {
        sluice_client_free(mem[i].cl);
    }
    for (uint32_t i = 0; i < RECEIVERS; i++) {
        sluice_client_free(rcv[i].cl);
    }
    seen_fini(&grp);
    seen_fini(&que);
    sluice_client_free(admin);
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
    ack_shard = calloc(RECORDS, sizeof(*ack_shard));
    ack_seq = calloc(RECORDS, sizeof(*ack_seq));
    if (ack_shard == NULL || ack_seq == NULL) {
        return 1;
    }
    RUN(four_producers_group_and_ordered_queue_through_4_8_3_16);
    it_broker_cleanup(&broker);
    free(ack_shard);
    free(ack_seq);
    TEST_END();
}
