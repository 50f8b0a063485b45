/* history.h - the console's charts without Prometheus: the broker samples
 * its own counters every interval (`ui_sample_interval_ms`, 10 s: the last
 * hour) and keeps SL_HISTORY_SAMPLES of them in rings - the totals, up to SL_HISTORY_STREAMS_MAX streams (records and
 * bytes in and out) and up to SL_HISTORY_GROUPS_MAX consumer groups (lag in
 * records and time). Streams and groups beyond those take a slot when one
 * frees (a deleted stream, a group without checkpoints any more).
 *
 * Memory: fixed at the first sample (about 1.2 MiB), whatever the number of
 * streams, shards or groups. Time: one pass over the catalog and one batched
 * lag computation (as a /metrics scrape) per interval.
 *
 * Threading: the main loop.
 */
#ifndef SL_API_HISTORY_H
#define SL_API_HISTORY_H

#include <jansson.h>
#include <stdint.h>

#define SL_HISTORY_SAMPLES     360u /* one hour at the default interval */
#define SL_HISTORY_STREAMS_MAX 64u
#define SL_HISTORY_GROUPS_MAX  64u

struct sl_engine;
struct sl_history;

/* NULL without memory (then there is no history: the charts say so). */
struct sl_history *sl_history_new(uint32_t interval_ms);
void sl_history_free(struct sl_history *h); /* NULL-safe */

/* From the loop's tick: samples when an interval has passed. */
void sl_history_tick(struct sl_history *h, struct sl_engine *e, uint64_t now_ms);

/* The series as JSON: {"interval_s", "t": [wall ms], and per series
 * an array of per-second rates (null where unknown)}. stream NULL: the
 * totals; group non-NULL: that group's lag on the stream. NULL when the
 * stream or group is not tracked. */
json_t *sl_history_json(const struct sl_history *h, const char *stream, const char *group);

/* The answer for a stream (group non-NULL: a group) that exists but has no
 * series: the same keys with empty arrays, and "kept": false when every
 * slot is taken (no series until one frees), true when the next sample
 * starts one. */
json_t *sl_history_json_none(const struct sl_history *h, const char *group);

#endif
