/* route.c - the client's routing table (route.h): brokers and shard leaders from Metadata.
 *
 * Invariants (checked after every apply): broker node ids are distinct and >= 0, at most
 * SL_ROUTE_BROKERS_MAX; stream names are distinct, at most SL_ROUTE_STREAMS_MAX; each
 * stream's leader[]/epoch[] cover n_ids <= SL_ROUTE_SHARD_IDS_MAX ids, every leader >= -1.
 * An answer is checked whole before the table changes (untrusted: it comes off the wire).
 */
#include "client/route.h"

#include "common/assert.h"
#include "common/error.h"
#include "common/partition.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the bootstrap list ---- */

/* Whether `a` (len bytes) looks like host:port or [v6]:port with a numeric port. */
static int addr_ok(const char *a, size_t len)
{
    const char *colon = NULL;
    for (size_t i = len; i > 0; i--) {
        if (a[i - 1] == ':') {
            colon = &a[i - 1];
            break;
        }
    }
    if (colon == NULL || colon == a || (size_t)(colon - a) + 1 == len) {
        return 0;
    }
    for (const char *p = colon + 1; p < a + len; p++) {
        if (*p < '0' || *p > '9') {
            return 0;
        }
    }
    return 1;
}

int sl_route_parse_list(const char *list, char (*out)[SL_ROUTE_ADDR_MAX], uint32_t *n,
                        char *why, size_t why_len)
{
    *n = 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        while (len > 0 && (*p == ' ' || *p == '\t')) { /* "h1:p1, h2:p2" is written too */
            p++;
            len--;
        }
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
            len--;
        }
        if (*n == SL_ROUTE_BOOTSTRAP_MAX) {
            snprintf(why, why_len, "more than %u brokers in the list '%.60s...' (name a few: "
                     "the client learns the others)", SL_ROUTE_BOOTSTRAP_MAX, list);
            return SL_EINVAL;
        }
        if (len == 0 || len >= SL_ROUTE_ADDR_MAX || !addr_ok(p, len)) {
            snprintf(why, why_len, "bad broker address '%.*s' in '%.60s' (want HOST:PORT, or "
                     "HOST1:PORT1,HOST2:PORT2,...)", (int)(len < 64 ? len : 64), p, list);
            return SL_EINVAL;
        }
        memcpy(out[*n], p, len);
        out[*n][len] = '\0';
        (*n)++;
        if (end == NULL) {
            break;
        }
        p = end + 1;
    }
    SL_ASSERT(*n >= 1 && *n <= SL_ROUTE_BOOTSTRAP_MAX);
    return SL_OK;
}

/* ---- the table ---- */

int sl_route_init(struct sl_route *r)
{
    memset(r, 0, sizeof(*r));
    r->self_id = SL_ROUTE_NONE;
    r->brokers = calloc(SL_ROUTE_BROKERS_MAX, sizeof(*r->brokers));
    return r->brokers != NULL ? SL_OK : SL_ENOMEM;
}

static void stream_free(struct sl_route_stream *s)
{
    free(s->leader);
    free(s->epoch);
    memset(s, 0, sizeof(*s));
}

void sl_route_fini(struct sl_route *r)
{
    for (uint32_t i = 0; i < r->n_streams; i++) {
        stream_free(&r->streams[i]);
    }
    r->n_streams = 0;
    free(r->brokers);
    r->brokers = NULL;
    r->n_brokers = 0;
}

static void check_invariants(const struct sl_route *r)
{
    SL_ASSERT(r->n_brokers <= SL_ROUTE_BROKERS_MAX && r->n_streams <= SL_ROUTE_STREAMS_MAX);
    for (uint32_t i = 0; i < r->n_brokers; i++) {
        SL_ASSERT(r->brokers[i].node_id >= 0);
        SL_ASSERT(memchr(r->brokers[i].addr, '\0', SL_ROUTE_ADDR_MAX) != NULL);
    }
    for (uint32_t i = 0; i < r->n_streams; i++) {
        const struct sl_route_stream *s = &r->streams[i];
        SL_ASSERT(s->n_ids <= SL_ROUTE_SHARD_IDS_MAX && s->name[0] != '\0');
        SL_ASSERT(s->n_ids == 0 || (s->leader != NULL && s->epoch != NULL));
    }
}

static struct sl_route_stream *find_stream(const struct sl_route *r, const char *name)
{
    for (uint32_t i = 0; i < r->n_streams; i++) {
        if (strcmp(r->streams[i].name, name) == 0) {
            return (struct sl_route_stream *)&r->streams[i];
        }
    }
    return NULL;
}

/* Checks the brokers of an answer. */
static int check_brokers(const struct sluice_metadata *m, char *why, size_t why_len)
{
    size_t selfs = 0;
    for (size_t i = 0; i < m->n_brokers; i++) {
        const struct sluice_broker_info *b = &m->brokers[i];
        if (b->node_id > INT32_MAX) {
            snprintf(why, why_len, "metadata: broker node id %u out of range", b->node_id);
            return SL_EPROTO;
        }
        if (b->address == NULL || strlen(b->address) >= SL_ROUTE_ADDR_MAX) {
            snprintf(why, why_len, "metadata: broker %u has no address or one too long",
                     b->node_id);
            return SL_EPROTO;
        }
        selfs += b->self ? 1 : 0;
        /* (quadratic, but on at most the brokers kept) */
        for (size_t j = 0; j < i && j < SL_ROUTE_BROKERS_MAX; j++) {
            if (m->brokers[j].node_id == b->node_id) {
                snprintf(why, why_len, "metadata: broker node id %u listed twice", b->node_id);
                return SL_EPROTO;
            }
        }
    }
    if (selfs > 1) {
        snprintf(why, why_len, "metadata: %zu brokers say they answered", selfs);
        return SL_EPROTO;
    }
    return SL_OK;
}

/* Checks one stream of an answer; *n_ids gets the ids its table needs. */
static int check_stream(const struct sluice_metadata *m, size_t k, uint32_t *n_ids, char *why,
                        size_t why_len)
{
    const struct sluice_stream_route *sr = &m->streams[k];
    if (sr->name == NULL || sr->name[0] == '\0' || strlen(sr->name) > SL_ROUTE_NAME_MAX) {
        snprintf(why, why_len, "metadata: stream %zu has no name or one too long", k);
        return SL_EPROTO;
    }
    for (size_t j = 0; j < k; j++) {
        if (strcmp(m->streams[j].name, sr->name) == 0) {
            snprintf(why, why_len, "metadata: stream '%s' listed twice", sr->name);
            return SL_EPROTO;
        }
    }
    *n_ids = 0;
    for (size_t i = 0; i < sr->n_shards; i++) {
        const struct sluice_shard_route *sh = &sr->shards[i];
        if (sh->shard >= SL_ROUTE_SHARD_IDS_MAX || (i > 0 && sh->shard <= sr->shards[i - 1].shard)) {
            snprintf(why, why_len, "metadata: stream '%s': shard ids not ascending below %u",
                     sr->name, SL_ROUTE_SHARD_IDS_MAX);
            return SL_EPROTO;
        }
        if (sh->leader < SL_ROUTE_NONE || sh->n_replicas > SLUICE_REPLICAS_MAX ||
            sh->n_isr > SLUICE_REPLICAS_MAX) {
            snprintf(why, why_len, "metadata: stream '%s' shard %u: leader %d or %u replicas / "
                     "%u in sync out of range", sr->name, sh->shard, sh->leader, sh->n_replicas,
                     sh->n_isr);
            return SL_EPROTO;
        }
        *n_ids = sh->shard + 1;
    }
    return SL_OK;
}

/* A new entry for stream k of `m` (n_ids ids), built aside. */
static int stream_build(const struct sluice_stream_route *sr, uint32_t n_ids,
                        struct sl_route_stream *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", sr->name);
    out->n_ids = n_ids;
    if (n_ids == 0) {
        return SL_OK;
    }
    out->leader = malloc(n_ids * sizeof(*out->leader));
    out->epoch = calloc(n_ids, sizeof(*out->epoch));
    if (out->leader == NULL || out->epoch == NULL) {
        stream_free(out);
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < n_ids; i++) {
        out->leader[i] = SL_ROUTE_NONE;
    }
    for (size_t i = 0; i < sr->n_shards; i++) {
        SL_ASSERT(sr->shards[i].shard < n_ids);
        out->leader[sr->shards[i].shard] = sr->shards[i].leader;
        out->epoch[sr->shards[i].shard] = sr->shards[i].leader_epoch;
    }
    return SL_OK;
}

/* Where a learned stream goes: its old entry, a free one, or the least recently learned. */
static struct sl_route_stream *stream_slot(struct sl_route *r, const char *name)
{
    struct sl_route_stream *s = find_stream(r, name);
    if (s != NULL) {
        return s;
    }
    if (r->n_streams < SL_ROUTE_STREAMS_MAX) {
        return &r->streams[r->n_streams++];
    }
    s = &r->streams[0];
    for (uint32_t i = 1; i < r->n_streams; i++) {
        s = r->streams[i].used < s->used ? &r->streams[i] : s;
    }
    return s;
}

int sl_route_apply(struct sl_route *r, const struct sluice_metadata *m, char *why,
                   size_t why_len)
{
    SL_ASSERT(r->brokers != NULL);
    if (m->n_streams > SLUICE_METADATA_STREAMS) {
        snprintf(why, why_len, "metadata: %zu streams answered, at most %u asked", m->n_streams,
                 SLUICE_METADATA_STREAMS);
        return SL_EPROTO;
    }
    int rc = check_brokers(m, why, why_len);
    uint32_t n_ids[SLUICE_METADATA_STREAMS];
    for (size_t k = 0; rc == SL_OK && k < m->n_streams; k++) {
        rc = check_stream(m, k, &n_ids[k], why, why_len);
    }
    if (rc != SL_OK) {
        return rc;
    }
    struct sl_route_stream built[SLUICE_METADATA_STREAMS];
    for (size_t k = 0; k < m->n_streams; k++) {
        if (stream_build(&m->streams[k], n_ids[k], &built[k]) != SL_OK) {
            for (size_t j = 0; j < k; j++) {
                stream_free(&built[j]);
            }
            snprintf(why, why_len, "out of memory");
            return SL_ENOMEM;
        }
    }
    /* checked and built: nothing below fails */
    r->clock++;
    r->self_id = SL_ROUTE_NONE;
    r->cluster = m->cluster;
    r->n_brokers = 0;
    for (size_t i = 0; i < m->n_brokers && r->n_brokers < SL_ROUTE_BROKERS_MAX; i++) {
        struct sl_route_broker *b = &r->brokers[r->n_brokers++];
        b->node_id = (int32_t)m->brokers[i].node_id;
        snprintf(b->addr, sizeof(b->addr), "%s", m->brokers[i].address);
        if (m->brokers[i].self) {
            r->self_id = b->node_id;
        }
    }
    for (size_t k = 0; k < m->n_streams; k++) {
        struct sl_route_stream *s = stream_slot(r, built[k].name);
        stream_free(s);
        *s = built[k];
        s->used = r->clock;
    }
    check_invariants(r);
    return SL_OK;
}

void sl_route_forget(struct sl_route *r, const char *stream)
{
    struct sl_route_stream *s = find_stream(r, stream);
    if (s == NULL) {
        return;
    }
    stream_free(s);
    *s = r->streams[--r->n_streams]; /* the last moves into the hole */
    memset(&r->streams[r->n_streams], 0, sizeof(r->streams[0]));
    check_invariants(r);
}

int sl_route_leader(const struct sl_route *r, const char *stream, uint32_t shard, int32_t *node,
                    int32_t *epoch)
{
    const struct sl_route_stream *s = find_stream(r, stream);
    if (s == NULL || shard >= s->n_ids || s->leader[shard] == SL_ROUTE_NONE) {
        return SL_ENOTFOUND;
    }
    SL_ASSERT(s->leader[shard] >= 0);
    *node = s->leader[shard];
    if (epoch != NULL) {
        *epoch = s->epoch[shard];
    }
    return SL_OK;
}

int sl_route_group_shard(const struct sl_route *r, const char *stream, const char *group,
                         uint32_t *shard)
{
    const struct sl_route_stream *s = find_stream(r, stream);
    if (s == NULL || s->n_ids == 0) {
        return SL_ENOTFOUND;
    }
    *shard = sl_partition_group_shard(group, strlen(group), s->n_ids);
    SL_ASSERT(*shard < s->n_ids);
    return SL_OK;
}

int sl_route_knows(const struct sl_route *r, const char *stream)
{
    return find_stream(r, stream) != NULL;
}

const struct sl_route_broker *sl_route_broker(const struct sl_route *r, int32_t node_id)
{
    for (uint32_t i = 0; i < r->n_brokers; i++) {
        if (r->brokers[i].node_id == node_id) {
            return &r->brokers[i];
        }
    }
    return NULL;
}

/* ---- a Metadata answer off the wire ---- */

void sluice_metadata_free(struct sluice_metadata *m)
{
    if (m == NULL) {
        return;
    }
    for (size_t i = 0; i < m->n_brokers; i++) {
        free((char *)m->brokers[i].address);
        free((char *)m->brokers[i].http_address);
        free((char *)m->brokers[i].version);
        free((char *)m->brokers[i].state);
    }
    for (size_t i = 0; i < m->n_streams; i++) {
        free((char *)m->streams[i].name);
        free(m->streams[i].shards);
    }
    free(m->brokers);
    free(m->streams);
    free(m);
}

static char *dup_or_empty(const char *s)
{
    return strdup(s != NULL ? s : "");
}

static int copy_brokers(const Sluice__V1__MetadataResponse *pb, struct sluice_metadata *m)
{
    m->brokers = calloc(pb->n_brokers + 1, sizeof(*m->brokers));
    if (m->brokers == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < pb->n_brokers; i++) {
        const Sluice__V1__BrokerInfo *b = pb->brokers[i];
        struct sluice_broker_info *d = &m->brokers[i];
        m->n_brokers = i + 1;
        d->node_id = b->node_id;
        d->start_time_ms = b->start_time_ms;
        d->self = b->self;
        d->address = dup_or_empty(b->address);
        d->http_address = dup_or_empty(b->http_address);
        d->version = dup_or_empty(b->version);
        d->state = dup_or_empty(b->state);
        if (d->address == NULL || d->http_address == NULL || d->version == NULL ||
            d->state == NULL) {
            return SL_ENOMEM;
        }
    }
    return SL_OK;
}

static int copy_stream(const Sluice__V1__StreamRoute *sr, struct sluice_stream_route *d,
                       char *why, size_t why_len)
{
    d->name = dup_or_empty(sr->name);
    d->shards = calloc(sr->n_shards + 1, sizeof(*d->shards));
    if (d->name == NULL || d->shards == NULL) {
        return SL_ENOMEM;
    }
    for (size_t j = 0; j < sr->n_shards; j++) {
        const Sluice__V1__ShardRoute *r = sr->shards[j];
        struct sluice_shard_route *o = &d->shards[j];
        if (r->n_replicas > SLUICE_REPLICAS_MAX || r->n_isr > SLUICE_REPLICAS_MAX ||
            r->n_lag > SLUICE_REPLICAS_MAX || r->n_target > SLUICE_REPLICAS_MAX) {
            snprintf(why, why_len, "metadata: stream '%.64s' shard %u lists %zu replicas, "
                     "%zu in sync and %zu lags (at most %u)", d->name, r->shard, r->n_replicas,
                     r->n_isr, r->n_lag, SLUICE_REPLICAS_MAX);
            return SL_EPROTO;
        }
        o->shard = r->shard;
        o->leader = r->leader;
        o->leader_epoch = r->leader_epoch;
        o->open = r->open;
        o->n_replicas = (uint32_t)r->n_replicas;
        o->n_isr = (uint32_t)r->n_isr;
        if (r->n_replicas > 0) {
            memcpy(o->replicas, r->replicas, r->n_replicas * sizeof(o->replicas[0]));
        }
        if (r->n_isr > 0) {
            memcpy(o->isr, r->isr, r->n_isr * sizeof(o->isr[0]));
        }
        o->n_target = (uint32_t)r->n_target;
        if (r->n_target > 0) {
            memcpy(o->target, r->target, r->n_target * sizeof(o->target[0]));
        }
        o->n_lag = (uint32_t)r->n_lag;
        for (size_t l = 0; l < r->n_lag; l++) {
            o->lag[l].node = r->lag[l]->node;
            o->lag[l].behind = r->lag[l]->behind;
            o->lag[l].caught_up_ms_ago = r->lag[l]->caught_up_ms_ago;
        }
        d->n_shards = j + 1;
    }
    return SL_OK;
}

int sl_route_metadata_copy(const Sluice__V1__MetadataResponse *pb, struct sluice_metadata **out,
                           char *why, size_t why_len)
{
    *out = NULL;
    if (pb->n_streams > SLUICE_METADATA_STREAMS) {
        snprintf(why, why_len, "metadata: %zu streams answered, at most %u asked", pb->n_streams,
                 SLUICE_METADATA_STREAMS);
        return SL_EPROTO;
    }
    struct sluice_metadata *m = calloc(1, sizeof(*m));
    int rc = m != NULL ? SL_OK : SL_ENOMEM;
    if (rc == SL_OK) {
        m->cluster = pb->cluster;
        m->node_id = pb->node_id;
        rc = copy_brokers(pb, m);
    }
    if (rc == SL_OK) {
        m->streams = calloc(pb->n_streams + 1, sizeof(*m->streams));
        rc = m->streams != NULL ? SL_OK : SL_ENOMEM;
    }
    for (size_t i = 0; rc == SL_OK && i < pb->n_streams; i++) {
        m->n_streams = i + 1;
        rc = copy_stream(pb->streams[i], &m->streams[i], why, why_len);
    }
    if (rc != SL_OK) {
        if (rc == SL_ENOMEM) {
            snprintf(why, why_len, "out of memory");
        }
        sluice_metadata_free(m);
        return rc;
    }
    SL_ASSERT(m->n_brokers == pb->n_brokers && m->n_streams == pb->n_streams);
    *out = m;
    return SL_OK;
}
