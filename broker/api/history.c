/* history.c - the console's last hour of samples (see history.h).
 *
 * Sample n (counting from 0 since start) lives at ring index
 * n % SL_HISTORY_SAMPLES. A series holds cumulative counters (stream) or
 * gauges (group lag) at each sample since `since`, the first sample taken
 * after it got its slot; earlier ones read as unknown (null), as do samples
 * where a counter went backwards (a stream deleted and made again).
 */
#include "broker/api/history.h"

#include "broker/engine/catalog.h"
#include "broker/engine/consumer.h"
#include "broker/engine/engine.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "storage/checkpoint.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum { IO_RECORDS_IN, IO_BYTES_IN, IO_RECORDS_OUT, IO_BYTES_OUT, IO_COUNT_ };
static const char *const io_names[IO_COUNT_] = {"records_in", "bytes_in", "records_out",
                                                "bytes_out"};

struct stream_series {
    char name[SL_STREAM_NAME_MAX + 1];
    bool used, seen;
    uint64_t since; /* first sample number held */
    uint64_t v[SL_HISTORY_SAMPLES][IO_COUNT_];
};

struct group_series {
    char stream[SL_STREAM_NAME_MAX + 1];
    char group[SL_CKPT_GROUP_NAME_MAX + 1];
    bool used, seen;
    uint64_t since;
    uint64_t records[SL_HISTORY_SAMPLES];
    uint64_t ms[SL_HISTORY_SAMPLES];
};

struct sl_history {
    uint32_t interval_ms;
    uint64_t samples;      /* taken so far */
    uint64_t next_mono_ms; /* when the next is due */
    uint64_t t[SL_HISTORY_SAMPLES]; /* wall clock of each */
    uint64_t total[SL_HISTORY_SAMPLES][IO_COUNT_];
    struct stream_series streams[SL_HISTORY_STREAMS_MAX];
    struct group_series groups[SL_HISTORY_GROUPS_MAX];
};

struct sl_history *sl_history_new(uint32_t interval_ms)
{
    SL_ASSERT(interval_ms > 0);
    struct sl_history *h = calloc(1, sizeof(struct sl_history));
    if (h != NULL) {
        h->interval_ms = interval_ms;
    }
    return h;
}

void sl_history_free(struct sl_history *h)
{
    free(h);
}

static struct stream_series *stream_slot(struct sl_history *h, const char *name, bool take)
{
    struct stream_series *free_slot = NULL;
    for (uint32_t i = 0; i < SL_HISTORY_STREAMS_MAX; i++) {
        struct stream_series *s = &h->streams[i];
        if (s->used && strcmp(s->name, name) == 0) {
            return s;
        }
        free_slot = free_slot == NULL && !s->used ? s : free_slot;
    }
    if (!take || free_slot == NULL) {
        return NULL;
    }
    memset(free_slot, 0, sizeof(*free_slot));
    free_slot->used = true;
    free_slot->since = h->samples;
    snprintf(free_slot->name, sizeof(free_slot->name), "%s", name);
    return free_slot;
}

static struct group_series *group_slot(struct sl_history *h, const char *stream,
                                       const char *group, bool take)
{
    struct group_series *free_slot = NULL;
    for (uint32_t i = 0; i < SL_HISTORY_GROUPS_MAX; i++) {
        struct group_series *g = &h->groups[i];
        if (g->used && strcmp(g->stream, stream) == 0 && strcmp(g->group, group) == 0) {
            return g;
        }
        free_slot = free_slot == NULL && !g->used ? g : free_slot;
    }
    if (!take || free_slot == NULL) {
        return NULL;
    }
    memset(free_slot, 0, sizeof(*free_slot));
    free_slot->used = true;
    free_slot->since = h->samples;
    snprintf(free_slot->stream, sizeof(free_slot->stream), "%s", stream);
    snprintf(free_slot->group, sizeof(free_slot->group), "%s", group);
    return free_slot;
}

static void sample_streams(struct sl_history *h, struct sl_engine *e, uint32_t idx)
{
    memset(h->total[idx], 0, sizeof(h->total[idx]));
    for (uint32_t i = 0; i < SL_HISTORY_STREAMS_MAX; i++) {
        h->streams[i].seen = false;
    }
    for (struct sl_stream *st = sl_catalog_first(e->catalog); st != NULL; st = st->next) {
        uint64_t v[IO_COUNT_] = {0};
        for (uint32_t s = 0; s < st->shard_count; s++) {
            v[IO_RECORDS_IN] += st->shards[s]->io.records_in;
            v[IO_BYTES_IN] += st->shards[s]->io.bytes_in;
            v[IO_RECORDS_OUT] += st->shards[s]->io.records_out;
            v[IO_BYTES_OUT] += st->shards[s]->io.bytes_out;
        }
        for (uint32_t k = 0; k < IO_COUNT_; k++) {
            h->total[idx][k] += v[k];
        }
        struct stream_series *ss = stream_slot(h, st->name, true);
        if (ss != NULL) {
            memcpy(ss->v[idx], v, sizeof(v));
            ss->seen = true;
            /* First seen since the last sample, the stream had zero counters
             * there (its counters start at zero in this process, and the slot
             * is zeroed): that is its baseline, so the records of its first
             * interval count as a rate. (Not "created since the last sample":
             * created_ms is taken before the creator threads make its files,
             * so a sample can fall between it and the stream's install, and
             * records written before the next sample were then never a rate:
             * the console test saw that under load.) */
            if (ss->since == h->samples && h->samples > 0) {
                ss->since--;
            }
        }
    }
    for (uint32_t i = 0; i < SL_HISTORY_STREAMS_MAX; i++) {
        if (h->streams[i].used && !h->streams[i].seen) {
            h->streams[i].used = false; /* deleted: the slot is free */
        }
    }
}

static void sample_groups(struct sl_history *h, struct sl_engine *e, uint32_t idx)
{
    struct sl_group_lag *lag = NULL;
    size_t n = 0;
    if (sl_consumer_lag_all(e, &lag, &n) != SL_OK) {
        return; /* no memory: this sample reads as unknown */
    }
    for (uint32_t i = 0; i < SL_HISTORY_GROUPS_MAX; i++) {
        h->groups[i].seen = false;
    }
    /* entries come group by group (a group's shards together) */
    for (size_t i = 0; i < n;) {
        size_t j = i;
        uint64_t records = 0, ms = 0;
        while (j < n && strcmp(lag[j].stream, lag[i].stream) == 0 &&
               strcmp(lag[j].group, lag[i].group) == 0) {
            records += lag[j].lag.records_behind;
            ms = lag[j].lag.ms_behind > ms ? lag[j].lag.ms_behind : ms;
            j++;
        }
        struct group_series *g = group_slot(h, lag[i].stream, lag[i].group, true);
        if (g != NULL && !g->seen) {
            g->records[idx] = records;
            g->ms[idx] = ms;
            g->seen = true;
        }
        i = j;
    }
    for (uint32_t i = 0; i < SL_HISTORY_GROUPS_MAX; i++) {
        if (h->groups[i].used && !h->groups[i].seen) {
            h->groups[i].used = false;
        }
    }
    sl_consumer_lag_all_free(lag, n);
}

void sl_history_tick(struct sl_history *h, struct sl_engine *e, uint64_t now_ms)
{
    if (h == NULL || now_ms < h->next_mono_ms) {
        return;
    }
    h->next_mono_ms = now_ms + h->interval_ms;
    uint32_t idx = (uint32_t)(h->samples % SL_HISTORY_SAMPLES);
    h->t[idx] = sl_clock_wall_ms();
    sample_streams(h, e, idx);
    sample_groups(h, e, idx);
    h->samples++;
    SL_ASSERT(h->samples > 0);
}

/* ---- answers ------------------------------------------------------------------- */

/* The samples held for a series that began at `since`: [first, samples). */
static uint64_t first_of(const struct sl_history *h, uint64_t since)
{
    uint64_t oldest = h->samples > SL_HISTORY_SAMPLES ? h->samples - SL_HISTORY_SAMPLES : 0;
    return since > oldest ? since : oldest;
}

static json_t *rate(uint64_t prev, uint64_t cur, uint64_t dt_ms)
{
    if (cur < prev || dt_ms == 0) {
        return json_null();
    }
    return json_real((double)(cur - prev) * 1000.0 / (double)dt_ms);
}

/* Rates between consecutive samples of counters `v` (one row per sample). */
static json_t *io_json(const struct sl_history *h, uint64_t since,
                       const uint64_t (*v)[IO_COUNT_])
{
    uint64_t first = first_of(h, since);
    json_t *out = json_pack("{s:f,s:[]}", "interval_s", h->interval_ms / 1000.0, "t");
    if (out == NULL) {
        return NULL;
    }
    json_t *series[IO_COUNT_];
    for (uint32_t k = 0; k < IO_COUNT_; k++) {
        series[k] = json_array();
        json_object_set_new(out, io_names[k], series[k]);
    }
    json_t *t = json_object_get(out, "t");
    for (uint64_t n = first + 1; n < h->samples; n++) {
        uint32_t i = (uint32_t)(n % SL_HISTORY_SAMPLES);
        uint32_t p = (uint32_t)((n - 1) % SL_HISTORY_SAMPLES);
        json_array_append_new(t, json_integer((json_int_t)h->t[i]));
        uint64_t dt = h->t[i] > h->t[p] ? h->t[i] - h->t[p] : 0;
        for (uint32_t k = 0; k < IO_COUNT_; k++) {
            json_array_append_new(series[k], rate(v[p][k], v[i][k], dt));
        }
    }
    return out;
}

static json_t *lag_json(const struct sl_history *h, const struct group_series *g)
{
    json_t *t = json_array(), *records = json_array(), *ms = json_array();
    for (uint64_t n = first_of(h, g->since); n < h->samples; n++) {
        uint32_t i = (uint32_t)(n % SL_HISTORY_SAMPLES);
        json_array_append_new(t, json_integer((json_int_t)h->t[i]));
        json_array_append_new(records, json_integer((json_int_t)g->records[i]));
        json_array_append_new(ms, json_integer((json_int_t)g->ms[i]));
    }
    return json_pack("{s:f,s:o,s:o,s:o}", "interval_s", h->interval_ms / 1000.0, "t", t,
                     "records_behind", records, "ms_behind", ms);
}

json_t *sl_history_json(const struct sl_history *h, const char *stream, const char *group)
{
    if (h == NULL) {
        return NULL;
    }
    if (stream == NULL) {
        return io_json(h, 0, (const uint64_t(*)[IO_COUNT_])h->total);
    }
    struct sl_history *mut = (struct sl_history *)h; /* lookups only: take = false */
    if (group != NULL) {
        const struct group_series *g = group_slot(mut, stream, group, false);
        return g != NULL ? lag_json(h, g) : NULL;
    }
    const struct stream_series *s = stream_slot(mut, stream, false);
    return s != NULL ? io_json(h, s->since, (const uint64_t(*)[IO_COUNT_])s->v) : NULL;
}

static bool has_room(const struct sl_history *h, bool group)
{
    uint32_t n = group ? SL_HISTORY_GROUPS_MAX : SL_HISTORY_STREAMS_MAX;
    for (uint32_t i = 0; i < n; i++) {
        if (!(group ? h->groups[i].used : h->streams[i].used)) {
            return true;
        }
    }
    return false;
}

json_t *sl_history_json_none(const struct sl_history *h, const char *group)
{
    if (h == NULL) {
        return NULL;
    }
    json_t *out = json_pack("{s:f,s:[],s:b}", "interval_s", h->interval_ms / 1000.0, "t",
                            "kept", has_room(h, group != NULL));
    static const char *const lag_names[] = {"records_behind", "ms_behind"};
    const char *const *names = group != NULL ? lag_names : io_names;
    size_t n = group != NULL ? 2 : IO_COUNT_;
    for (size_t k = 0; out != NULL && k < n; k++) {
        json_object_set_new(out, names[k], json_array());
    }
    return out;
}
