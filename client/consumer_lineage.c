/* consumer_lineage.c - a consumer reading a whole stream across resharding (#16).
 *
 * Kinesis's rule, kept by the client: a shard is fetched only after each of its parents has
 * been read to its end - closed, and this consumer's position (the sequence after the last
 * record handed out) reached the parent's end - so every key's records come out in order
 * across splits and merges. Parents retention removed (absent from the description) count
 * as read.
 *
 * The layout comes from DescribeStream: at creation, then again every
 * CONSUMER_LINEAGE_REFRESH_MS while some shard this consumer holds open sits at its tail (a
 * shard that was closed looks like one at its tail: nothing more comes), and at once when a
 * fetch says a shard is closed or gone. New shard ids grow `shards`; the fetches in flight
 * point into it, so a description with new ids waits (no fetch starts meanwhile) until they
 * have all ended, then applies.
 *
 * Positions: shards described at creation start at opts.start, except that LATEST becomes
 * the described next sequence for closed shards and for children (they are read later,
 * when LATEST would have moved past records appended since the consumer started); shards
 * found later start at their beginning (every record in them is newer than the consumer),
 * or at opts.start when that is a time.
 *
 * Threads: the consumer's thread only, like poll; `mu` only to count the fetches in flight.
 */
#include "client/consumer_int.h"

#include "common/assert.h"
#include "common/clock.h"

#include <stdlib.h>
#include <string.h>

int sl_consumer_shard_finished(const struct cshard *s)
{
    return s->closed && s->cur == NULL && s->next_known && sl_cshard_read_to(s) >= s->end_seq;
}

/* Whether every ancestor of `s` is finished (or gone: retention removed it). Parents alone
 * are not enough: a change that splits or merges a shard it made leaves an empty closed
 * shard - finished at once - between a parent still being read and its grandchild. A
 * parent's id is below its child's, so one pass down the ids asks each ancestor once. */
int sl_consumer_shard_readable(const struct sluice_consumer *c, const struct cshard *s)
{
    if (!c->lineage) {
        return 1;
    }
    SL_ASSERT(s->parents_len <= SLUICE_SHARD_PARENTS_MAX && c->n <= CONSUMER_SHARD_IDS_MAX);
    uint8_t need[CONSUMER_SHARD_IDS_MAX / 8] = {0};
    uint32_t pending = 0;
    const struct cshard *at = s;
    for (uint32_t i = s->shard + 1; i-- > 0;) {
        if (at == NULL) {
            if (pending == 0) {
                break;
            }
            if (!(need[i / 8] & (1u << (i % 8)))) {
                continue;
            }
            pending--;
            at = &c->shards[i];
            if (at->held && !sl_consumer_shard_finished(at)) {
                return 0;
            }
        }
        for (uint32_t k = 0; k < at->parents_len; k++) {
            uint32_t id = at->parents[k];
            if (id >= c->n || id >= at->shard) {
                return 0; /* not described yet (or not a parent: wait for a description) */
            }
            if (!(need[id / 8] & (1u << (id % 8)))) {
                need[id / 8] |= (uint8_t)(1u << (id % 8));
                pending++;
            }
        }
        at = NULL;
    }
    return pending == 0;
}

/* Where a shard starts: `initial` (described when the consumer was made) or found later. */
static struct sluice_position start_of(const struct sluice_consumer *c,
                                       const struct sluice_shard_info *si, int initial)
{
    struct sluice_position pos = c->opts.start;
    if (!initial) {
        return pos.kind == SLUICE_AT_TIMESTAMP
                   ? pos
                   : (struct sluice_position){SLUICE_TRIM_HORIZON, 0, 0};
    }
    if (pos.kind == SLUICE_LATEST && (si->closed || si->parents_len > 0)) {
        return (struct sluice_position){SLUICE_AT_SEQUENCE, si->next_seq, 0};
    }
    return pos;
}


/* Makes `info` the consumer's layout. Errors: SL_EAGAIN (new ids while fetches are in
 * flight: apply it later), SL_EPROTO (ids out of range), SL_ENOMEM. */
static int lineage_apply(struct sluice_consumer *c, const struct sluice_stream_info *info,
                         int initial)
{
    uint32_t n = info->shard_count;
    if (n > CONSUMER_SHARD_IDS_MAX) {
        sl_client_set_error("stream %s: %u shard ids, over the limit %u", c->stream, n,
                            CONSUMER_SHARD_IDS_MAX);
        return SL_EPROTO;
    }
    for (uint32_t i = 0; i < info->shards_len; i++) {
        if (info->shards[i].shard >= n) {
            sl_client_set_error("stream %s: shard id %u out of its %u", c->stream,
                                info->shards[i].shard, n);
            return SL_EPROTO;
        }
    }
    uint32_t old_n = c->n;
    if (n > old_n) {
        if (sl_consumer_fetching(c)) {
            return SL_EAGAIN;
        }
        int rc = sl_consumer_shards_grow(c, n);
        if (rc != SL_OK) {
            return rc;
        }
    }
    for (uint32_t i = 0; i < c->n; i++) {
        c->shards[i].held = 0; /* absent from the description: retention removed it */
    }
    sl_consumer_lineage_copy(c, info);
    for (uint32_t i = 0; i < info->shards_len; i++) {
        const struct sluice_shard_info *si = &info->shards[i];
        struct cshard *s = &c->shards[si->shard];
        s->held = 1;
        if (si->shard >= old_n) {
            struct sluice_position pos = start_of(c, si, initial);
            sl_consumer_shard_reset(c, s, &pos);
        }
    }
    return SL_OK;
}

int sl_consumer_lineage_init(struct sluice_consumer *c, const struct sluice_stream_info *info)
{
    SL_ASSERT(c->lineage && c->n == 0 && c->shards == NULL);
    if (info->shard_count == 0) {
        sl_client_set_error("no shards to read");
        return SL_EINVAL;
    }
    c->next_describe_ms = sl_clock_mono_ms() + CONSUMER_LINEAGE_REFRESH_MS;
    return lineage_apply(c, info, 1);
}

/* Whether a shard this consumer takes as open sits at its tail: it may have been closed. */
static int open_shard_idle(const struct sluice_consumer *c)
{
    for (uint32_t i = 0; i < c->n; i++) {
        const struct cshard *s = &c->shards[i];
        if (s->held && !s->closed && s->at_tail) {
            return 1;
        }
    }
    return 0;
}

uint64_t sl_consumer_lineage_wake_ms(const struct sluice_consumer *c)
{
    if (!c->lineage || c->layout_pending != NULL) {
        return UINT64_MAX; /* a pending layout waits for fetches, which wake the poll */
    }
    return c->describe_now || open_shard_idle(c) ? c->next_describe_ms : UINT64_MAX;
}

int sl_consumer_lineage_step(struct sluice_consumer *c)
{
    if (!c->lineage) {
        return SL_OK;
    }
    if (c->layout_pending != NULL) {
        int rc = lineage_apply(c, c->layout_pending, 0);
        if (rc == SL_EAGAIN) {
            return SL_OK;
        }
        sluice_stream_info_free(c->layout_pending);
        c->layout_pending = NULL;
        if (rc != SL_OK) {
            return rc;
        }
    }
    uint64_t now = sl_clock_mono_ms();
    if (!c->describe_now && !(now >= c->next_describe_ms && open_shard_idle(c))) {
        return SL_OK;
    }
    c->describe_now = 0;
    c->next_describe_ms = now + CONSUMER_LINEAGE_REFRESH_MS;
    struct sluice_stream_info *info = NULL;
    int rc = sluice_stream_describe(c->c, c->stream, &info);
    if (rc != SL_OK) {
        /* a deleted stream is the caller's news; anything else: again next period (a broken
         * connection also fails the fetches, which say so) */
        return rc == SL_ENOTFOUND ? rc : SL_OK;
    }
    rc = lineage_apply(c, info, 0);
    if (rc == SL_EAGAIN) {
        c->layout_pending = info;
        return SL_OK;
    }
    sluice_stream_info_free(info);
    return rc;
}

int sl_consumer_lineage_blocks_fetches(const struct sluice_consumer *c)
{
    return c->layout_pending != NULL;
}
