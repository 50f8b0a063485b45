/* push_int.h - what the push module's files share (push.c: batches, delivery,
 * settling, one-off POSTs, receiving; push_table.c: the targets table, its
 * file and the API of push.h). Internal to broker/push.
 *
 * Ownership: a target's runtime state (struct push_rt) lives until it is
 * removed AND nothing of it is out (batches, receives, settle callbacks);
 * batches point at it and at its settings, which never change in place (a
 * replaced target is a new rt). A batch belongs to the loop while it fills
 * and settles, to the HTTP thread between submit and done. Its records are
 * copied at receive time into blocks of its own (one allocation per receive, never per record).
 *
 * Memory: every batch holds at most SL_PUSH_BATCH_BYTES_MAX bytes of
 * records, and all batches together at most SL_PUSH_MEMORY_MAX: a target
 * does not receive while that is used up. Records past a batch's byte budget
 * are released at once (visible again, no delivery counted against them but
 * the lease's).
 */
#ifndef SL_PUSH_INT_H
#define SL_PUSH_INT_H

#include "broker/push/http.h"
#include "broker/push/push.h"
#include "common/ring.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_PUSH_BATCH_BYTES_MAX (6u << 20)  /* a batch's records (Lambda's 6 MB payload) */
#define SL_PUSH_MEMORY_MAX      (256u << 20) /* all batches' records together */
#define RECEIVE_WAIT_MS         10000u       /* a receive's long-poll when no batch fills */
#define LEASE_MARGIN_MS         10000u       /* lease beyond window + timeout */
#define ERROR_PAUSE_MS          2000u        /* after a failed receive (no group, ...) */
#define NOTIFY_RETRY_MS         2000u        /* a one-off POST's next try: 2 s, then 4 s */

struct push_block {
    struct push_block *next;
    uint8_t data[];
};

struct push_rt;

struct push_batch {
    struct sl_push_call call; /* first: the HTTP thread's handle on the batch */
    struct push_rt *rt;
    struct sl_push_source src; /* strings borrowed from rt->t */
    uint32_t n, cap;
    struct sl_push_record *recs;
    const char **receipts;
    bool *failed; /* set by finish() on the HTTP thread */
    uint32_t nfailed;
    bool all_failed;
    uint64_t forward_start_ns;
    struct push_block *blocks;
    size_t bytes;
    uint32_t max_deliveries_seen;
};

struct push_rt {
    struct sl_push_target t;
    /* t.url for logs, last_error and the console: no userinfo, query or
     * fragment (common/url.h), which may carry credentials */
    char shown_url[SL_PUSH_URL_MAX + 8];
    struct sl_push *p;
    const char *forward_to; /* in t.url: a forward target's stream (forward.h); NULL: HTTP */
    struct sl_push_transform *tf; /* t.transform compiled (owned; NULL: none); immutable */
    uint32_t forward_rr;    /* the shard for the next batch's unkeyed records */
    bool removed;
    uint32_t receiving; /* receives out: one while a batch fills, else up to concurrency */
    uint32_t batches;  /* leased: filling or posting */
    uint32_t settling; /* settle calls out (their callbacks name this target) */
    struct push_batch *filling;
    uint64_t window_end_ms;
    uint64_t paused_until_ms;
    uint32_t failures;
    uint64_t delivered, released, batches_ok, batches_failed, last_latency_us;
    long last_status;
    char last_error[256];
};

struct sl_push {
    struct sl_engine *e;
    struct sl_ring *ring;
    char data_dir[4096];
    struct push_rt **rts; /* live and removed-but-draining */
    uint32_t n, cap;
    struct sl_push_http *http;
    int wake_fd;
    struct sl_io_op wake_op;
    uint64_t wake_val;
    bool wake_armed;
    bool stopping;
    size_t bytes;      /* records held by every batch */
    uint32_t receiving; /* receives out, all targets */
    uint32_t settling;  /* settle calls out, all targets */
    uint32_t forwarding; /* forwards out (their batches are the loop's) */
    struct sl_push_call *forwarded; /* forwards answered, to settle from collect() */
    uint64_t rng;
    struct push_notify *notify_wait; /* one-off POSTs waiting for their next attempt */
    uint32_t notifies;               /* one-off POSTs held (waiting or out) */
};

/* A one-off POST (sl_push_notify): no records, no lease; retried a few
 * times from the tick, then dropped with a log line. */
struct push_notify {
    struct sl_push_call call; /* first: the HTTP thread's handle */
    char *url;                /* owned */
    uint32_t attempts;
    uint64_t due_ms;
    struct push_notify *next; /* notify_wait */
};

/* push.c */
/* Keeps target rt receiving and posting as its settings allow. */
void push_pump(struct push_rt *rt);
/* Settles what the HTTP thread and the forwards answered. */
void push_collect(struct sl_push *p);
/* Sends the one-off POSTs due by `now` (UINT64_MAX while stopping: drops them). */
void push_notify_due(struct sl_push *p, uint64_t now);
/* Frees a removed target once nothing of it is out. */
void push_reap(struct sl_push *p, struct push_rt *rt);
/* The live target of (stream, group), or NULL. */
struct push_rt *push_find(const struct sl_push *p, const char *stream, const char *group);
/* Releases a batch that will not be sent (its leases run out: at least once). */
void push_batch_drop(struct push_batch *b);
/* Marks rt removed: it receives no more; its batches still settle. */
void push_retire(struct push_rt *rt);
/* The HTTP thread's wake-up read completed (the ring's callback). */
void push_on_wake(struct sl_io_op *op, int res);

/* push_table.c */
/* Writes the live targets (plus `extra`, minus `skip`) to the file. */
int push_save(struct sl_push *p, const struct sl_push_target *extra, const struct push_rt *skip,
              char *why, size_t why_len);

#endif
