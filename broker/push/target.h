/* target.h - a push target: where and how the broker delivers a queue
 * group's records by itself (#17), and the file that keeps every target.
 *
 * A target belongs to one queue group (or topic subscription): the broker
 * leases the group's records like any receiver, POSTs them in batches to
 * `url` in `format`, and settles them from the answer (push.h). Retries are
 * the group's redeliveries, so its max_deliveries and dead-letter stream
 * apply unchanged.
 *
 * The file (<data>/push/targets): u32 magic "SLPT", u32 version (3), u32
 * count, then per target: u8 stream_len, stream, u8 group_len, group, u16
 * url_len, url, u8 format, u8 flags (bit 0 insecure), u32 batch_size,
 * batch_window_ms, concurrency, timeout_ms, retry_base_ms, retry_max_ms, u16
 * transform_len, transform (version 2), u8 replay_len, replay (version 3;
 * older files, without them, are still read); then u64 XXH3 of everything
 * before it. Written whole on each change (tmp,
 * fsync, rename, fsync dir): changes are rare admin operations.
 */
#ifndef SL_PUSH_TARGET_H
#define SL_PUSH_TARGET_H

#include "broker/push/payload.h"
#include "broker/push/transform.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_PUSH_NAME_MAX        128u    /* a stream's or group's name (as the engine's) */
#define SL_PUSH_URL_MAX         2048u
#define SL_PUSH_TARGETS_MAX     1024u   /* targets on one broker */
#define SL_PUSH_BATCH_MAX       10000u  /* records per POST */
#define SL_PUSH_WINDOW_MAX_MS   300000u /* batching window (Lambda's 5 minutes) */
#define SL_PUSH_CONCURRENCY_MAX 64u     /* POSTs in flight per target */
#define SL_PUSH_TIMEOUT_MIN_MS  100u
#define SL_PUSH_TIMEOUT_MAX_MS  900000u /* Lambda's 15 minutes */
#define SL_PUSH_RETRY_MAX_MS    3600000u
#define SL_PUSH_REPLAY_NAME_MAX 64u /* EventBridge's limit on a replay's name */

struct sl_push_target {
    char stream[SL_PUSH_NAME_MAX + 1];
    char group[SL_PUSH_NAME_MAX + 1];
    char url[SL_PUSH_URL_MAX + 1];
    uint8_t format;           /* enum sl_push_format */
    bool insecure;            /* https without verifying the peer (tests, private CAs) */
    uint32_t batch_size;      /* 1 .. SL_PUSH_BATCH_MAX (EVENTBRIDGE: 1); 0 = 10 */
    uint32_t batch_window_ms; /* wait up to this for a full batch; 0 = send what is there */
    uint32_t concurrency;     /* POSTs in flight; 0 = 1 */
    uint32_t timeout_ms;      /* per POST; 0 = 30 s */
    uint32_t retry_base_ms;   /* first backoff; 0 = 1 s */
    uint32_t retry_max_ms;    /* backoff cap; 0 = 5 min */
    /* "" or a body transform (transform.h: EventBridge's Input, InputPath or
     * InputTransformer), applied to each event; format eventbridge only */
    char transform[SL_PUSH_TRANSFORM_SPEC_MAX + 1];
    /* "" or the EventBridge replay this target delivers for: each event carries
     * "replay-name" (as AWS marks replayed events); format eventbridge only */
    char replay_name[SL_PUSH_REPLAY_NAME_MAX + 1];
};

/* Fills defaults (the 0s above) and checks every field. Errors: SL_EINVAL
 * with `why` naming the field and the range or form it needs. */
int sl_push_target_check(struct sl_push_target *t, char *why, size_t why_len);

/* Reads the targets file under `data_dir`. No file: *n = 0. Errors:
 * SL_ECORRUPT (the checksum or the structure is wrong: `why` names the file
 * and the fix), SL_EIO, SL_ENOMEM. *out is malloc'd (free()). */
int sl_push_targets_load(const char *data_dir, struct sl_push_target **out, uint32_t *n,
                         char *why, size_t why_len);

/* Replaces the file with these `n` targets, durably. Errors: SL_EIO,
 * SL_ENOSPC, SL_ENOMEM (`why` says which call failed). */
int sl_push_targets_save(const char *data_dir, const struct sl_push_target *t, uint32_t n,
                         char *why, size_t why_len);

#endif
