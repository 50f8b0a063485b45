/* producer_int.h - what producer.c (batching, sending, acknowledgements, the flusher) and
 * producer_reshard.c (routing by the stream's layout, re-partitioning a closed shard's
 * batches) share. Library-internal. Every function named *_locked runs under p->mu.
 */
#ifndef SL_CLIENT_PRODUCER_INT_H
#define SL_CLIENT_PRODUCER_INT_H

#include "client/conn.h"
#include "client/layout.h"
#include "storage/batch.h"

#include <pthread.h>
#include <stdint.h>

#define PRODUCER_BATCH_BYTES_DEFAULT  (1u << 20)
#define PRODUCER_BUFFER_BYTES_DEFAULT (64u << 20)
#define PRODUCER_LINGER_MS_DEFAULT    5u
#define PRODUCER_RETRIES_DEFAULT      10u
#define PRODUCER_BACKOFF_MS_DEFAULT   100u
#define PRODUCER_BACKOFF_MAX_MS       5000u
#define PRODUCER_MOVED_POLL_MS        200u /* Metadata while a shard's leader is being replaced */
#define PRODUCER_ZSTD_LEVEL_DEFAULT   3
#define PRODUCER_SEAL_SLACK           64u /* seal when less than this is left in the buffer */
#define PRODUCER_IDLE_WAKE_MS         1000u
#define PRODUCER_LAYOUT_CHECK_MS      1000u /* ACK_NONE: describe again this often */
#define PRODUCER_INFLIGHT_DEFAULT     5u    /* as Kafka's idempotent producer */
#define PRODUCER_SHARD_IDS_MAX        8192u /* a stream's lineage at most (docs/PROTOCOL.md) */

struct pdelivery {
    sluice_delivery_cb cb;
    void *ctx;
};

struct pbatch {
    struct pbatch *next;
    struct sluice_producer *p;
    uint32_t shard;
    uint8_t *buf;
    struct sl_batch_builder b;
    size_t len; /* after finish */
    int finished;
    struct pdelivery *dels;
    uint32_t dels_cap;
    size_t acct_bytes;
    uint64_t opened_ms;
    uint64_t order;       /* sealed order within the shard: the queue's order */
    uint64_t producer_id; /* stamped when taken to be sent (0: not yet) */
    uint64_t producer_seq;
    int restamp; /* finished under another id: stamp again before sending */
    int pin;     /* sent behind unanswered batches: on their connection only */
    /* A send went out and no answer said it was not stored: before its records may move
     * off a closed shard it is resent there (stored: "duplicate"; else SHARD_CLOSED). */
    int maybe_stored;
    int fail_err; /* on the flusher's report list: the error to report */
    uint32_t attempts;
    uint64_t retry_at_ms;
    int32_t sent_leader; /* the shard's leader and epoch as routed at its last send (#14) */
    int32_t sent_epoch;
    uint64_t sealed_ns; /* opts.on_trace: SLUICE_PT_SEALED and _SENT (flusher) */
    uint64_t sent_ns;
};

struct pshard {
    struct pbatch *open;
    struct pbatch *head; /* sealed, waiting to be sent (FIFO) */
    struct pbatch *tail;
    uint32_t inflight;    /* batches sent, not answered (ack modes other than NONE) */
    uint64_t producer_id; /* this shard's current id (a new one after a batch failed for good) */
    uint64_t next_producer_seq;
    uint64_t next_order;
    /* The connection generation its last batch was sent on; PSHARD_NO_CONN after a send
     * that failed before going out (the flusher thread's only). */
    uint64_t conn_gen;
    uint64_t hash_start; /* its range, as last described */
    uint64_t hash_end;
    int closed;         /* described closed, or it refused a batch as closed: for good */
    int open_in_layout; /* the routing table (p->layout) has it as an open shard */
    /* A batch failed because the leader moved (#14): the leader and epoch it was sent to.
     * While set, the flusher learns the leaders every PRODUCER_MOVED_POLL_MS and resends the
     * shard's waiting batches as soon as the table names another (not after their backoff,
     * which doubles well past an election). Under mu. */
    int moved;
    int32_t moved_leader;
    int32_t moved_epoch;
};

#define PSHARD_NO_CONN UINT64_MAX /* matches no connection */

struct sluice_producer {
    sluice_client *c;
    char *stream;
    struct sluice_producer_opts opts;
    unsigned codec;
    uint32_t shard_count; /* shard ids known: shards[0 .. shard_count) */
    struct sl_layout layout;
    /* Closed shards with batches pending (open, queued or in flight), ascending ids: a key
     * whose hash one holds goes to the oldest (docs above). May hold drained ones until
     * the next recount (harmless: their records move on). */
    struct sl_layout_range *draining;
    uint32_t draining_len;
    int layout_stale; /* a shard the table has open refused a batch as closed */
    uint64_t layout_retry_at_ms;
    /* ACK_NONE gets no refusal: while it sends, it describes every PRODUCER_LAYOUT_CHECK_MS */
    uint64_t layout_check_ms;
    uint64_t layout_check_batches; /* stats.batches_sent at the last check */
    uint32_t layout_failures;      /* describes failed in a row */
    /* A batch failed because its shard's leader moved: learn the leaders (Metadata) before
     * sending again (flusher); route_retry_at_ms: not before then. */
    int route_stale;
    uint64_t route_retry_at_ms;
    uint64_t producer_id;
    size_t record_max; /* bytes of one batch at most: frame and format limits */
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* buffer space, outstanding reaching 0 */
    pthread_cond_t wake_cv; /* the flusher */
    struct pshard **shards; /* by id; grown (by the flusher, under mu) when ids are added */
    size_t buffered;
    uint64_t outstanding; /* records produced, not yet reported */
    uint32_t rr;
    int flush_now;
    int closing;
    struct sluice_producer_stats stats;
    pthread_t thread;
    int thread_started;
    struct sl_zctx *z;
    uint8_t *scratch;
    size_t scratch_cap;
};

/* One pass of the flusher: batches to send, and batches to report failed (`fail_err`),
 * counted in flight so that batch_complete takes them off like an answered send. */
struct pwork {
    struct pbatch *send;
    struct pbatch **send_tail;
    struct pbatch *fail;
    struct pbatch **fail_tail;
};

/* producer.c */
void sl_producer_batch_free(struct pbatch *b); /* NULL-safe */
/* Moves the shard's open batch (if any) to its send queue. */
void sl_producer_seal_locked(struct sluice_producer *p, struct pshard *s);
/* Puts a batch that was in flight back into its shard's queue, in the queue's order. */
void sl_producer_requeue_locked(struct sluice_producer *p, struct pbatch *b);
/* Bytes a record takes in a batch at most (what `buffered` counts for it). */
size_t sl_producer_record_need(const struct sl_record *rec);
/* Appends a record to a shard's open batch, opening or sealing batches as needed; the
 * caller accounts `need` in p->buffered. Errors: SL_ENOMEM, SL_ETOOBIG, the codec's. */
int sl_producer_append_locked(struct sluice_producer *p, uint32_t shard,
                              const struct sl_record *rec, size_t need, sluice_delivery_cb cb,
                              void *ctx);
/* Takes the head of `s`'s queue to be sent (stamped as needed) onto w's send list. */
void sl_producer_take_head_locked(struct sluice_producer *p, struct pshard *s, struct pwork *w);
/* Puts `b` (off every queue) on w's report list with `err`. */
void sl_producer_fail_locked(struct sluice_producer *p, struct pbatch *b, int err, struct pwork *w);

/* producer_reshard.c */
/* Whether `s` is closed with batches pending: its keys' new records queue behind it. */
int sl_producer_shard_draining(const struct pshard *s);
void sl_producer_draining_recount_locked(struct sluice_producer *p);
/* The shard for a key's hash among ids >= min_id (behind draining shards). */
uint32_t sl_producer_route_locked(const struct sluice_producer *p, uint64_t hash, uint32_t min_id);
/* A batch the shard refused as closed (from its answer; without mu). */
void sl_producer_refused_closed(struct sluice_producer *p, struct pbatch *b);
/* A closed shard's part of the flusher's pass. */
void sl_producer_drain_locked(struct sluice_producer *p, struct pshard *s, uint64_t now,
                              uint64_t *wake_ms, struct pwork *w);
/* Makes a fresh description the producer's layout. Errors: SL_EPROTO, SL_EAGAIN, SL_ENOMEM
 * (nothing changed; the reason is set). */
int sl_producer_layout_apply_locked(struct sluice_producer *p,
                                    const struct sluice_stream_info *info);
/* ACK_NONE producers: marks the layout stale when a check is due and batches went out since
 * the last (no refusal ever tells such a producer that a shard closed). */
void sl_producer_layout_check_locked(struct sluice_producer *p, uint64_t now);
/* After a describe for a stale layout: applies it or schedules the next try. */
void sl_producer_layout_refresh_done_locked(struct sluice_producer *p, int rc,
                                            const struct sluice_stream_info *info, struct pwork *w);

#endif
