/* consumer_int.h - what consumer.c (reads, checkpoints) and consumer_group.c (a
 * consumer-group member's joins, heartbeats and hand-overs) share. Library-internal.
 */
#ifndef SL_CLIENT_CONSUMER_INT_H
#define SL_CLIENT_CONSUMER_INT_H

#include "client/conn.h"
#include "storage/batch.h"

#include <pthread.h>
#include <stdint.h>

#define CONSUMER_FETCH_BYTES_DEFAULT (4u << 20)
#define CONSUMER_ARENA_BLOCK         (64u << 10)
#define CONSUMER_LINEAGE_REFRESH_MS  1000u /* describe again while an open shard idles */
#define CONSUMER_SHARD_IDS_MAX       8192u /* a stream's lineage at most (docs/PROTOCOL.md) */

struct cshard {
    struct sluice_consumer *owner;
    uint32_t shard;
    int held;   /* read by this consumer (always, unless it is a group member) */
    int sought; /* seek since the last commit: the commit may go backwards */
    struct sluice_position pos;
    uint64_t skip_below;
    uint64_t next_seq;
    int next_known;
    /* ctl_run: control batches (the broker's own state, docs/FORMAT.md) were read since the
     * last record, from ctl_from on. A response that ends with them does not move next_seq
     * over them, else every commit would append one more and an idle group would commit
     * for ever (a commit on a cluster stream is a control batch). */
    int ctl_run;
    uint64_t ctl_from;
    uint64_t committed;
    int committed_known;
    uint64_t tail_seq;
    int fetched_once;
    int at_tail;
    /* The shard's lineage as last described (a consumer reading the whole stream). */
    int closed;
    uint64_t end_seq; /* closed: the sequence after its last record */
    uint32_t parents[SLUICE_SHARD_PARENTS_MAX];
    uint32_t parents_len;
    /* Guarded by the consumer's mu. */
    uint64_t epoch;
    uint64_t fetch_epoch;
    int fetching;
    int fetch_quick;
    int ready;
    int ready_err;
    sl_response *ready_resp;
    char ready_msg[200];
    uint64_t fetch_sent_ns; /* opts.trace: of the fetch in flight, and its answer's arrival */
    uint64_t ready_io_ns;
    /* The response being drained (consumer thread only). */
    sl_response *cur;
    size_t off;
    uint64_t cur_next_seq;
    int in_batch;
    struct sl_batch_header h;
    struct sl_batch_iter it;
    uint8_t *scratch;
    uint64_t trace[SLUICE_FT_N]; /* opts.trace: the stages of `cur` (or the last one) */
    int traced;
};

/* Where reading of s has got to: next_seq, or past control batches read after it. */
static inline uint64_t sl_cshard_read_to(const struct cshard *s)
{
    return s->next_seq > s->skip_below ? s->next_seq : s->skip_below;
}

struct arena_block {
    struct arena_block *next;
    size_t used;
    size_t cap;
    _Alignas(16) unsigned char data[];
};

struct release {
    void *ptr;
    int is_resp;
};

struct sluice_consumer {
    sluice_client *c;
    char *stream;
    char *group;
    struct sluice_consumer_opts opts;
    struct cshard *shards; /* shards[i] is shard i, except with an explicit shard list */
    uint32_t n;
    uint32_t rr;
    /* A consumer reading the whole stream (no shard list, no group) follows its lineage:
     * a shard is read after its ancestors are finished, new shards are found by describing
     * the stream again (consumer.c). */
    int lineage;
    uint64_t next_describe_ms;
    int describe_now;
    int route_stale;            /* a shard's leader moved: refresh before fetching (#14) */
    uint64_t route_retry_at_ms; /* the next refresh not before then */
    /* A description with new shard ids waiting for the fetches in flight to end: they
     * point into `shards`, which must grow. */
    struct sluice_stream_info *layout_pending;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t fetches; /* in flight */
    uint32_t quick;   /* in flight without long-poll */
    struct release *rel;
    size_t rel_len;
    size_t rel_cap;
    struct arena_block *arena;
    struct sl_zctx *z;
    uint64_t last_commit_ms;
    struct cmember *member; /* NULL unless a group member (consumer_group.c) */
};

/* Membership of a group member; NULL in a consumer that is none. */
struct cmember {
    char id[64]; /* "" until joined */
    uint64_t generation;
    char *instance; /* NULL: a dynamic member */
    uint32_t session_ms;
    uint32_t waiting;       /* shards assigned to it still held by another member */
    uint64_t next_beat_ms;  /* sl_clock_mono_ms() time of the next heartbeat */
    int beat_now;           /* a fetch or commit was fenced: ask at once */
    uint32_t *released;     /* revoked, committed, not yet reported: shard_count room */
    uint32_t n_released;
    uint32_t *list;         /* scratch for callbacks: shard_count room */
    /* > 0: the coordinator assigned shard ids up to this (the stream was resharded) and
     * the shard table grows once no fetch is in flight (fetches point into it): none is
     * started meanwhile, and the assignment is taken at the next heartbeat. */
    uint32_t grow_to;
};

/* consumer.c */
void sl_consumer_shard_reset(struct sluice_consumer *c, struct cshard *s,
                             const struct sluice_position *pos);
/* Grows the shard table (shards[i] is shard i) to n ids, the new ones zeroed but for their
 * owner and id; no fetch may be in flight (sl_consumer_fetching). Errors: SL_ENOMEM. */
int sl_consumer_shards_grow(struct sluice_consumer *c, uint32_t n);
int sl_consumer_fetching(struct sluice_consumer *c);
/* Copies each shard's lineage (closed, end, parents) from a description into the table. */
void sl_consumer_lineage_copy(struct sluice_consumer *c, const struct sluice_stream_info *info);
/* Commits the held shards that moved (only `only` when not NULL); *fenced counts the
 * shards the broker said this member no longer holds (their error is not returned). */
int sl_consumer_commit_held(struct sluice_consumer *c, const struct cshard *only,
                            uint32_t *fenced);

/* consumer_lineage.c (a consumer with c->lineage set; the others are unaffected) */
/* Builds c->shards from the stream's first description. Errors: SL_EINVAL (no shards),
 * SL_EPROTO, SL_ENOMEM. */
int sl_consumer_lineage_init(struct sluice_consumer *c, const struct sluice_stream_info *info);
/* From poll, before fetching: applies a pending layout once no fetch is in flight, and
 * describes the stream again when due. Errors: SL_ENOTFOUND (stream deleted), SL_EPROTO,
 * SL_ENOMEM; others are retried later. */
int sl_consumer_lineage_step(struct sluice_consumer *c);
/* When poll should wake up to describe again (UINT64_MAX: not on a timer). */
uint64_t sl_consumer_lineage_wake_ms(const struct sluice_consumer *c);
/* A layout waits for the fetches in flight to end: start no new one. */
int sl_consumer_lineage_blocks_fetches(const struct sluice_consumer *c);
/* Closed and read to its end (every record handed out). */
int sl_consumer_shard_finished(const struct cshard *s);
/* Whether `s` may be fetched: every ancestor finished (always, without lineage). */
int sl_consumer_shard_readable(const struct sluice_consumer *c, const struct cshard *s);

/* consumer_group.c */
int sl_cmember_new(struct sluice_consumer *c, const struct sluice_consumer_opts *opts,
                   uint32_t shard_count);
/* Joins or heartbeats when due, and applies what the coordinator says: revoked shards are
 * called back, committed, dropped and released; new ones start from their checkpoints. */
int sl_cmember_step(struct sluice_consumer *c);
/* Leaves (dynamic members) and frees the membership. */
void sl_cmember_free(struct sluice_consumer *c);

#endif
