/* push.h - push targets: the broker delivers a queue group's records to an
 * HTTP endpoint by itself (#17), at least once.
 *
 * Per target, on the main loop: one receive at a time leases up to
 * batch_size records (waiting up to batch_window_ms to fill the batch); each
 * batch is POSTed by the HTTP thread (http.h) in the target's format
 * (payload.h); at most `concurrency` batches are out. The answer settles the
 * batch: a 2xx acks it, except the records a Lambda partial batch response
 * names, which are released for a retry; any other answer, a timeout or a
 * transport error releases the whole batch. A released record is visible
 * again after an exponential backoff with jitter (retry_base_ms doubling per
 * delivery, capped at retry_max_ms); its delivery count is the group's, so
 * after max_deliveries it goes to the group's dead-letter stream as for any
 * receiver. A failing target is paused (circuit breaker: the same backoff
 * per consecutive failed batch) without touching other targets. Leases last
 * the window + timeout + a margin: a broker killed mid-POST redelivers, after
 * restart, exactly the batches it had not settled.
 *
 * Threading: the main loop (the queue engine's thread) only.
 */
#ifndef SL_PUSH_H
#define SL_PUSH_H

#include "broker/push/target.h"

#include <stdbool.h>
#include <stdint.h>

/* The region and account in the ARNs and awsRegion of what targets
 * receive: those the SQS and SNS APIs answer (QueueArn, TopicArn). */
#define SL_PUSH_REGION  "us-east-1"
#define SL_PUSH_ACCOUNT "000000000000"

struct sl_engine;
struct sl_ring;
struct sl_push;

struct sl_push_status {
    struct sl_push_target target;
    uint32_t inflight;         /* batches leased, not settled */
    uint64_t delivered;        /* records acknowledged by the target */
    uint64_t released;         /* records released for a retry */
    uint64_t batches_ok, batches_failed;
    uint32_t failures;         /* consecutive failed batches */
    uint64_t paused_ms;        /* left of the pause; 0 when flowing */
    long last_status;          /* HTTP status of the last answer; 0 none */
    char last_error[256];      /* the last failure ("" none) */
    uint64_t last_latency_us;  /* of the last POST */
};

/* Loads <data_dir>/push/targets and starts the HTTP thread. Errors:
 * SL_ECORRUPT, SL_EIO, SL_ENOMEM, SL_ESYS (`why` names the cause and the fix). */
int sl_push_open(struct sl_engine *e, struct sl_ring *ring, const char *data_dir,
                 struct sl_push **out, char *why, size_t why_len);

/* Starts receives for targets with room; settles answered batches. */
void sl_push_tick(struct sl_push *p, uint64_t now_ms);

/* Shutdown begins: no new receive or POST. */
void sl_push_stop(struct sl_push *p);

/* Stops the HTTP thread (unanswered batches stay leased: redelivered after
 * their visibility timeout or a restart) and frees everything. Runs `ring`
 * until its own wake-up read is done. NULL is a no-op. */
void sl_push_close(struct sl_push *p);

/* Adds a target, or replaces the one on the same stream and group, durably;
 * *t gets the defaults filled in (as stored). The group must exist. Errors: SL_EINVAL (why says which setting),
 * SL_ENOTFOUND (no such stream or group), SL_ELIMIT (SL_PUSH_TARGETS_MAX),
 * those of sl_push_targets_save. */
int sl_push_set(struct sl_push *p, struct sl_push_target *t, char *why, size_t why_len);

/* Removes a target durably (batches out are still settled).
 * Errors: SL_ENOTFOUND, those of sl_push_targets_save. */
int sl_push_remove(struct sl_push *p, const char *stream, const char *group, char *why,
                   size_t why_len);

/* A one-off POST, not tied to any record (the SNS SubscriptionConfirmation
 * message): `body` and `headers` ("Name: value\n" lines replacing the
 * default headers of those names, or NULL) are copied; the HTTP thread POSTs
 * it, and it is tried again (after 2 s, then 4 s) until a 2xx or
 * SL_PUSH_NOTIFY_ATTEMPTS tries; the outcome is only logged. At most
 * SL_PUSH_NOTIFY_MAX are held at once. Errors: SL_EINVAL (not an http(s)
 * URL), SL_ELIMIT (too many held, or shutting down), SL_ENOMEM. */
#define SL_PUSH_NOTIFY_ATTEMPTS 3u
#define SL_PUSH_NOTIFY_MAX      256u
int sl_push_notify(struct sl_push *p, const char *url, const char *body, const char *headers,
                   bool insecure, uint32_t timeout_ms);

/* Fills up to `cap` statuses (stream filter: NULL = all); returns how many
 * targets there are in total. */
uint32_t sl_push_list(const struct sl_push *p, const char *stream, struct sl_push_status *out,
                      uint32_t cap);

/* The status of the target of one queue group into *out; false when the
 * group has none (or p is NULL). */
bool sl_push_get(const struct sl_push *p, const char *stream, const char *group,
                 struct sl_push_status *out);

#endif
