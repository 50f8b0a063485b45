/* admin.c - the synchronous admin calls: streams, checkpoints, groups, lag.
 *
 * Each call builds one Request, waits for its Response through sl_client_call and copies
 * the answer into plain C structs the caller owns (so no protobuf type leaks out of the
 * library). Thread-safe: any number of threads may call these on one client.
 */
#include "client/conn.h"
#include "common/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs `req` and checks the response carries body `want`; *out owned on SL_OK. A response
 * whose body message is empty in the schema (DeleteStream, CommitCheckpoint) may also come
 * without the body: protobuf cannot tell "empty message" from "unset" for a lenient peer. */
static int admin_call(sluice_client *c, sl_request *req, Sluice__V1__Response__BodyCase want,
                      sl_response **out)
{
    int empty_ok = want == SLUICE__V1__RESPONSE__BODY_DELETE_STREAM ||
                   want == SLUICE__V1__RESPONSE__BODY_COMMIT_CHECKPOINT;
    return sl_client_call_want(c, req, 0, want, empty_ok, out);
}

/* admin_call to the home of `group` on `stream` (sl_client_call_group). */
static int group_call(sluice_client *c, const char *stream, const char *group, sl_request *req,
                      Sluice__V1__Response__BodyCase want, sl_response **out)
{
    int empty_ok = want == SLUICE__V1__RESPONSE__BODY_COMMIT_CHECKPOINT;
    int rc = sl_client_call_group(c, stream, group, req, 0, out);
    return sl_client_want_body(rc, out, want, empty_ok);
}

static void stream_info_fini(struct sluice_stream_info *s)
{
    free(s->name);
    free(s->compression);
    free(s->shards);
    memset(s, 0, sizeof(*s));
}

void sluice_stream_info_free(struct sluice_stream_info *info)
{
    if (info != NULL) {
        stream_info_fini(info);
        free(info);
    }
}

void sluice_stream_list_free(struct sluice_stream_info *list, size_t count)
{
    if (list == NULL) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        stream_info_fini(&list[i]);
    }
    free(list);
}

static int stream_info_copy(const Sluice__V1__StreamInfo *src, struct sluice_stream_info *dst)
{
    memset(dst, 0, sizeof(*dst));
    if (src == NULL) {
        sl_client_set_error("response without stream info");
        return SL_EPROTO;
    }
    dst->name = strdup(src->name != NULL ? src->name : "");
    dst->compression = strdup(src->compression != NULL ? src->compression : "");
    dst->shard_count = src->shard_count;
    dst->retention_hours = src->retention_hours;
    dst->retention_bytes = src->retention_bytes;
    dst->created_ms = src->created_ms;
    if (src->n_shards > 0) {
        dst->shards = calloc(src->n_shards, sizeof(*dst->shards));
        dst->shards_len = dst->shards != NULL ? (uint32_t)src->n_shards : 0;
    }
    if (dst->name == NULL || dst->compression == NULL ||
        (src->n_shards > 0 && dst->shards == NULL)) {
        stream_info_fini(dst);
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    dst->open_shards = src->open_shards;
    for (size_t i = 0; i < src->n_shards; i++) {
        const Sluice__V1__ShardInfo *si = src->shards[i];
        if (si->n_parents > SLUICE_SHARD_PARENTS_MAX || si->n_children > SLUICE_SHARD_PARENTS_MAX) {
            sl_client_set_error("stream %s: shard %u has %zu parents and %zu children (at most "
                                "%u each): a broker speaking another protocol?",
                                dst->name, si->shard, si->n_parents, si->n_children,
                                SLUICE_SHARD_PARENTS_MAX);
            stream_info_fini(dst);
            return SL_EPROTO;
        }
        dst->shards[i] = (struct sluice_shard_info){
            .shard = si->shard,
            .hash_start = si->hash_start,
            .hash_end = si->hash_end,
            .first_seq = si->first_seq,
            .next_seq = si->next_seq,
            .bytes = si->bytes,
            .segments = si->segments,
            .status = (int)si->status,
            .closed = si->closed ? 1 : 0,
            .parents_len = (uint32_t)si->n_parents,
            .children_len = (uint32_t)si->n_children,
        };
        for (size_t k = 0; k < si->n_parents; k++) { /* (protobuf-c: NULL when none) */
            dst->shards[i].parents[k] = si->parents[k];
        }
        for (size_t k = 0; k < si->n_children; k++) {
            dst->shards[i].children[k] = si->children[k];
        }
        snprintf(dst->shards[i].status_message, sizeof(dst->shards[i].status_message), "%s",
                 si->status_message != NULL ? si->status_message : "");
    }
    return SL_OK;
}

/* Copies a response's StreamInfo into a new owned struct. */
static int stream_info_new(const Sluice__V1__StreamInfo *src, struct sluice_stream_info **out)
{
    struct sluice_stream_info *s = malloc(sizeof(*s));
    if (s == NULL) {
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    int rc = stream_info_copy(src, s);
    if (rc != SL_OK) {
        free(s);
        return rc;
    }
    *out = s;
    return SL_OK;
}

#define CREATE_WAIT_MS       10000u /* a cluster create waits this long at most for every leader */
#define DESCRIBE_LEADERS_MAX 64u    /* brokers asked for their shards, at most */

/* A DescribeStream request for `name` (borrowed), built in place: the request points at its
 * body. */
struct describe_req {
    Sluice__V1__DescribeStream body;
    sl_request req;
};

static void describe_req_init(struct describe_req *d, const char *name)
{
    d->body = (Sluice__V1__DescribeStream)SLUICE__V1__DESCRIBE_STREAM__INIT;
    d->body.name = (char *)name;
    d->req = (sl_request)SLUICE__V1__REQUEST__INIT;
    d->req.body_case = SLUICE__V1__REQUEST__BODY_DESCRIBE_STREAM;
    d->req.describe_stream = &d->body;
}

/* On a cluster the broker that made the stream answers once its own catalog has it; the
 * other brokers learn it from ZooKeeper a moment later, and a call routed to one of them
 * in between (a group's home, a shard's leader) would answer NOT_FOUND or EAGAIN. So the
 * create returns once every shard's leader describes the stream (bounded: the stream is
 * made either way; a leader that is slower only delays the caller's next call). Each leader
 * is asked once, through the first shard it leads. */
static void create_wait_leaders(sluice_client *c, const char *name, uint32_t shard_count)
{
    (void)sl_client_route_refresh(c, name, true); /* (a new client learns what it talks to) */
    if (!sl_client_route_cluster(c)) {
        return;
    }
    struct describe_req d;
    describe_req_init(&d, name);
    uint64_t give_up = sl_clock_mono_ms() + CREATE_WAIT_MS;
    int32_t answered[DESCRIBE_LEADERS_MAX];
    uint32_t n_answered = 0;
    for (uint32_t k = 0; k < shard_count; k++) {
        for (;;) {
            int32_t node = -1;
            bool known = sl_client_shard_leader(c, name, k, &node) == SL_OK;
            bool seen = false;
            for (uint32_t i = 0; known && i < n_answered && !seen; i++) {
                seen = answered[i] == node;
            }
            if (seen) {
                break;
            }
            sl_response *resp = NULL;
            int rc = sl_client_call_shard(c, name, k, &d.req, 0, &resp);
            sl_response_free(resp);
            bool lagging = rc == SL_ENOTFOUND || rc == SL_EAGAIN || rc == SL_ENOT_LEADER;
            if (!lagging && known && n_answered < DESCRIBE_LEADERS_MAX) {
                answered[n_answered++] = node;
            }
            if (!lagging || sl_clock_mono_ms() >= give_up) {
                break; /* (another error is the next call's to report) */
            }
            sl_clock_sleep_ms(SL_CLIENT_REFRESH_MS);
            (void)sl_client_route_refresh(c, name, false);
        }
    }
}

/* Whether the client talks to a cluster: known once a Metadata answer came (a route), else
 * asked (brokers only: a stream this broker does not know yet has no route to learn). */
static bool is_cluster(sluice_client *c)
{
    if (sl_client_route_cluster(c)) {
        return true;
    }
    struct sluice_metadata *m = NULL;
    bool yes = sluice_cluster_metadata(c, NULL, 0, &m) == SLUICE_OK && m->cluster;
    sluice_metadata_free(m);
    return yes;
}

/* The stream exists (EEXIST), maybe made a moment ago by another client, which this broker
 * or a shard's leader may not know yet: as after a create of our own, wait (bounded by
 * CREATE_WAIT_MS) until the broker asked first describes it, then every shard's leader. A
 * caller that goes on to use it (`sluice queue create` after a `stream create` elsewhere)
 * then finds it. The EEXIST's message is kept for the caller. */
static void exists_wait(sluice_client *c, const char *name)
{
    char why[512];
    snprintf(why, sizeof(why), "%s", sluice_last_error());
    uint64_t give_up = sl_clock_mono_ms() + CREATE_WAIT_MS;
    uint32_t shards = 0;
    for (bool checked = false;; checked = true) {
        struct describe_req d;
        describe_req_init(&d, name);
        sl_response *resp = NULL;
        int rc = admin_call(c, &d.req, SLUICE__V1__RESPONSE__BODY_DESCRIBE_STREAM, &resp);
        if (rc == SL_OK && resp->describe_stream->stream != NULL) {
            shards = resp->describe_stream->stream->shard_count;
        }
        sl_response_free(resp);
        if ((rc != SL_ENOTFOUND && rc != SL_EAGAIN) || sl_clock_mono_ms() >= give_up) {
            break;
        }
        if (!checked && !is_cluster(c)) {
            break; /* (one broker: it was deleted meanwhile, nothing to wait for) */
        }
        sl_clock_sleep_ms(SL_CLIENT_REFRESH_MS);
    }
    if (shards > 0) {
        create_wait_leaders(c, name, shards);
    }
    sl_client_set_error("%s", why);
}

int sluice_stream_create(sluice_client *c, const char *name, const struct sluice_stream_opts *o,
                         struct sluice_stream_info **info_out)
{
    Sluice__V1__CreateStream body = SLUICE__V1__CREATE_STREAM__INIT;
    body.name = (char *)name;
    body.shard_count = o->shard_count;
    body.retention_hours = o->retention_hours;
    body.retention_bytes = o->retention_bytes;
    body.replication_factor = o->replication_factor;
    body.compression = o->compression == SLUICE_COMPRESSION_ZSTD   ? "zstd"
                       : o->compression == SLUICE_COMPRESSION_NONE ? "none"
                                                                   : "";
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_CREATE_STREAM;
    req.create_stream = &body;
    sl_response *resp = NULL;
    int rc = admin_call(c, &req, SLUICE__V1__RESPONSE__BODY_CREATE_STREAM, &resp);
    if (rc == SL_OK && info_out != NULL) {
        rc = stream_info_new(resp->create_stream->stream, info_out);
    }
    uint32_t shards = rc == SL_OK && resp->create_stream->stream != NULL
                          ? resp->create_stream->stream->shard_count
                          : 0;
    sl_response_free(resp);
    if (shards > 0) {
        create_wait_leaders(c, name, shards);
    } else if (rc == SL_EEXIST) {
        exists_wait(c, name);
    }
    return rc;
}

int sluice_stream_delete(sluice_client *c, const char *name)
{
    Sluice__V1__DeleteStream body = SLUICE__V1__DELETE_STREAM__INIT;
    body.name = (char *)name;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_DELETE_STREAM;
    req.delete_stream = &body;
    sl_response *resp = NULL;
    int rc = admin_call(c, &req, SLUICE__V1__RESPONSE__BODY_DELETE_STREAM, &resp);
    sl_response_free(resp);
    return rc;
}

/* On a cluster each shard is described by its leader: another broker may hold no replica
 * of it (its log there is empty) or be behind. One call per leader; a leader that does not
 * answer leaves its shards as the first answer had them. */
static void shards_from_leaders(sluice_client *c, const char *name, sl_request *req,
                                struct sluice_stream_info *si)
{
    if (!sl_client_route_cluster(c) || si->shards_len == 0) {
        return;
    }
    (void)sl_client_route_refresh(c, name, true);
    int32_t *leader = malloc(si->shards_len * sizeof(*leader));
    if (leader == NULL) {
        return; /* (the first answer stands) */
    }
    for (uint32_t i = 0; i < si->shards_len; i++) {
        if (sl_client_shard_leader(c, name, si->shards[i].shard, &leader[i]) != SL_OK) {
            leader[i] = -1;
        }
    }
    uint32_t n_asked = 0;
    for (uint32_t i = 0; i < si->shards_len && n_asked < DESCRIBE_LEADERS_MAX; i++) {
        int32_t node = leader[i];
        bool seen = node < 0; /* (no leader known: the first answer stands) */
        for (uint32_t k = 0; k < i && !seen; k++) {
            seen = leader[k] == node;
        }
        if (seen) {
            continue;
        }
        n_asked++;
        sl_response *resp = NULL;
        struct sluice_stream_info *theirs = NULL;
        int rc =
            sl_client_want_body(sl_client_call_shard(c, name, si->shards[i].shard, req, 0, &resp),
                                &resp, SLUICE__V1__RESPONSE__BODY_DESCRIBE_STREAM, 0);
        if (rc == SL_OK && stream_info_new(resp->describe_stream->stream, &theirs) == SL_OK) {
            for (uint32_t j = 0; j < si->shards_len; j++) {
                for (uint32_t t = 0; t < theirs->shards_len && leader[j] == node; t++) {
                    if (theirs->shards[t].shard == si->shards[j].shard) {
                        si->shards[j] = theirs->shards[t];
                    }
                }
            }
        }
        sluice_stream_info_free(theirs);
        sl_response_free(resp);
    }
    free(leader);
}

int sluice_stream_describe(sluice_client *c, const char *name, struct sluice_stream_info **out)
{
    *out = NULL;
    struct describe_req d;
    describe_req_init(&d, name);
    sl_response *resp = NULL;
    int rc = admin_call(c, &d.req, SLUICE__V1__RESPONSE__BODY_DESCRIBE_STREAM, &resp);
    if (rc == SL_OK) {
        rc = stream_info_new(resp->describe_stream->stream, out);
    }
    sl_response_free(resp);
    if (rc == SL_OK) {
        shards_from_leaders(c, name, &d.req, *out);
    }
    return rc;
}

void sluice_reshard_result_free(struct sluice_reshard_result *r)
{
    if (r != NULL) {
        sluice_stream_info_free(r->stream);
        free(r->closed);
        free(r->opened);
        free(r);
    }
}

/* An owned copy of `n` shard ids (NULL when n is 0). */
static int ids_dup(const uint32_t *ids, size_t n, uint32_t **out)
{
    *out = NULL;
    if (n == 0) {
        return SL_OK;
    }
    *out = malloc(n * sizeof(**out));
    if (*out == NULL) {
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    memcpy(*out, ids, n * sizeof(**out));
    return SL_OK;
}

static int reshard_result_new(const Sluice__V1__ReshardStreamResponse *src,
                              struct sluice_reshard_result **out)
{
    struct sluice_reshard_result *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        sl_client_set_error("out of memory");
        return SL_ENOMEM;
    }
    int rc = stream_info_new(src->stream, &r->stream);
    if (rc == SL_OK) {
        rc = ids_dup(src->closed, src->n_closed, &r->closed);
    }
    if (rc == SL_OK) {
        rc = ids_dup(src->opened, src->n_opened, &r->opened);
    }
    if (rc != SL_OK) {
        sluice_reshard_result_free(r);
        return rc;
    }
    r->closed_len = src->n_closed;
    r->opened_len = src->n_opened;
    *out = r;
    return SL_OK;
}

/* Sends one ReshardStream (its change already set in `body`). */
static int reshard_call(sluice_client *c, Sluice__V1__ReshardStream *body,
                        struct sluice_reshard_result **out)
{
    if (out != NULL) {
        *out = NULL;
    }
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_RESHARD_STREAM;
    req.reshard_stream = body;
    sl_response *resp = NULL;
    int rc = admin_call(c, &req, SLUICE__V1__RESPONSE__BODY_RESHARD_STREAM, &resp);
    if (rc == SL_OK && out != NULL) {
        rc = reshard_result_new(resp->reshard_stream, out);
    }
    sl_response_free(resp);
    return rc;
}

int sluice_stream_split(sluice_client *c, const char *name, uint32_t shard, const uint64_t *at,
                        struct sluice_reshard_result **out)
{
    Sluice__V1__SplitShard split = SLUICE__V1__SPLIT_SHARD__INIT;
    split.shard = shard;
    split.has_at = at != NULL;
    split.at = at != NULL ? *at : 0;
    Sluice__V1__ReshardStream body = SLUICE__V1__RESHARD_STREAM__INIT;
    body.stream = (char *)name;
    body.change_case = SLUICE__V1__RESHARD_STREAM__CHANGE_SPLIT;
    body.split = &split;
    return reshard_call(c, &body, out);
}

int sluice_stream_merge(sluice_client *c, const char *name, uint32_t shard, uint32_t adjacent,
                        struct sluice_reshard_result **out)
{
    Sluice__V1__MergeShards merge = SLUICE__V1__MERGE_SHARDS__INIT;
    merge.shard = shard;
    merge.adjacent = adjacent;
    Sluice__V1__ReshardStream body = SLUICE__V1__RESHARD_STREAM__INIT;
    body.stream = (char *)name;
    body.change_case = SLUICE__V1__RESHARD_STREAM__CHANGE_MERGE;
    body.merge = &merge;
    return reshard_call(c, &body, out);
}

int sluice_stream_reshard(sluice_client *c, const char *name, uint32_t open_shards,
                          struct sluice_reshard_result **out)
{
    if (open_shards == 0) {
        if (out != NULL) {
            *out = NULL;
        }
        sl_client_set_error("a stream needs at least 1 open shard");
        return SL_EINVAL;
    }
    Sluice__V1__ReshardStream body = SLUICE__V1__RESHARD_STREAM__INIT;
    body.stream = (char *)name;
    body.change_case = SLUICE__V1__RESHARD_STREAM__CHANGE_TARGET_SHARDS;
    body.target_shards = open_shards;
    return reshard_call(c, &body, out);
}

int sluice_stream_list(sluice_client *c, struct sluice_stream_info **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    Sluice__V1__ListStreams body = SLUICE__V1__LIST_STREAMS__INIT;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_LIST_STREAMS;
    req.list_streams = &body;
    sl_response *resp = NULL;
    int rc = admin_call(c, &req, SLUICE__V1__RESPONSE__BODY_LIST_STREAMS, &resp);
    size_t n = rc == SL_OK ? resp->list_streams->n_streams : 0;
    struct sluice_stream_info *list = n > 0 ? calloc(n, sizeof(*list)) : NULL;
    if (n > 0 && list == NULL) {
        sl_client_set_error("out of memory");
        rc = SL_ENOMEM;
    }
    size_t done = 0;
    for (; rc == SL_OK && done < n; done++) {
        rc = stream_info_copy(resp->list_streams->streams[done], &list[done]);
    }
    sl_response_free(resp);
    if (rc != SL_OK) {
        sluice_stream_list_free(list, done);
        return rc;
    }
    *out = list;
    *count = n;
    return SL_OK;
}

int sluice_checkpoints_get(sluice_client *c, const char *group, const char *stream,
                           struct sluice_checkpoint **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    Sluice__V1__GetCheckpoints body = SLUICE__V1__GET_CHECKPOINTS__INIT;
    body.group = (char *)group;
    body.stream = (char *)stream;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_GET_CHECKPOINTS;
    req.get_checkpoints = &body;
    sl_response *resp = NULL;
    int rc = group_call(c, stream, group, &req, SLUICE__V1__RESPONSE__BODY_GET_CHECKPOINTS, &resp);
    size_t n = rc == SL_OK ? resp->get_checkpoints->n_checkpoints : 0;
    struct sluice_checkpoint *cps = n > 0 ? calloc(n, sizeof(*cps)) : NULL;
    if (n > 0 && cps == NULL) {
        sl_client_set_error("out of memory");
        rc = SL_ENOMEM;
    }
    for (size_t i = 0; rc == SL_OK && i < n; i++) {
        const Sluice__V1__Checkpoint *cp = resp->get_checkpoints->checkpoints[i];
        cps[i] = (struct sluice_checkpoint){cp->shard, cp->seq, cp->updated_ms};
    }
    sl_response_free(resp);
    if (rc != SL_OK) {
        free(cps);
        return rc;
    }
    *out = cps;
    *count = n;
    return SL_OK;
}

int sluice_checkpoint_commit(sluice_client *c, const char *group, const char *stream,
                             uint32_t shard, uint64_t seq)
{
    Sluice__V1__CommitCheckpoint body = SLUICE__V1__COMMIT_CHECKPOINT__INIT;
    body.group = (char *)group;
    body.stream = (char *)stream;
    body.shard = shard;
    body.seq = seq;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_COMMIT_CHECKPOINT;
    req.commit_checkpoint = &body;
    sl_response *resp = NULL;
    int rc =
        group_call(c, stream, group, &req, SLUICE__V1__RESPONSE__BODY_COMMIT_CHECKPOINT, &resp);
    sl_response_free(resp);
    return rc;
}

void sluice_groups_free(char **groups, size_t count)
{
    if (groups == NULL) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        free(groups[i]);
    }
    free(groups);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the names of one ListGroups answer to v[0 .. *n) (capacity *cap). */
static int names_add(char ***v, size_t *n, size_t *cap, const sl_response *resp)
{
    for (size_t i = 0; i < resp->list_groups->n_groups; i++) {
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 16;
            char **nv = realloc(*v, nc * sizeof(*nv));
            if (nv == NULL) {
                return SL_ENOMEM;
            }
            *v = nv;
            *cap = nc;
        }
        if (((*v)[*n] = strdup(resp->list_groups->groups[i])) == NULL) {
            return SL_ENOMEM;
        }
        (*n)++;
    }
    return SL_OK;
}

/* On a cluster stream a group lives at its home (the leader of its shard), and a broker
 * lists only the groups of the shards it holds a replica of: every leader is asked, and the
 * answers merged (sorted, without repeats). */
static int groups_list_cluster(sluice_client *c, const char *stream, sl_request *req, char ***out,
                               size_t *count)
{
    const char *names[1] = {stream};
    struct sluice_metadata *md = NULL;
    int rc = sluice_cluster_metadata(c, names, 1, &md);
    char **v = NULL;
    size_t n = 0, cap = 0;
    const struct sluice_stream_route *sr =
        rc == SL_OK && md->n_streams == 1 ? &md->streams[0] : NULL;
    for (size_t k = 0; rc == SL_OK && sr != NULL && k < sr->n_shards; k++) {
        bool asked = sr->shards[k].leader < 0; /* (offline: its groups answer once led) */
        for (size_t j = 0; j < k && !asked; j++) {
            asked = sr->shards[j].leader == sr->shards[k].leader;
        }
        if (asked) {
            continue;
        }
        sl_response *resp = NULL;
        rc =
            sl_client_want_body(sl_client_call_shard(c, stream, sr->shards[k].shard, req, 0, &resp),
                                &resp, SLUICE__V1__RESPONSE__BODY_LIST_GROUPS, 0);
        if (rc == SL_OK && names_add(&v, &n, &cap, resp) != SL_OK) {
            sl_client_set_error("out of memory");
            rc = SL_ENOMEM;
        }
        sl_response_free(resp);
    }
    sluice_metadata_free(md);
    if (rc != SL_OK) {
        sluice_groups_free(v, n);
        return rc;
    }
    if (n > 0) {
        qsort(v, n, sizeof(*v), name_cmp);
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (w > 0 && strcmp(v[w - 1], v[i]) == 0) {
            free(v[i]);
        } else {
            v[w++] = v[i];
        }
    }
    *out = v;
    *count = w;
    return SL_OK;
}

int sluice_groups_list(sluice_client *c, const char *stream, char ***out, size_t *count)
{
    *out = NULL;
    *count = 0;
    Sluice__V1__ListGroups body = SLUICE__V1__LIST_GROUPS__INIT;
    body.stream = (char *)stream;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_LIST_GROUPS;
    req.list_groups = &body;
    (void)sl_client_route_refresh(c, stream, true);
    if (sl_client_route_cluster(c)) {
        return groups_list_cluster(c, stream, &req, out, count);
    }
    sl_response *resp = NULL;
    int rc = admin_call(c, &req, SLUICE__V1__RESPONSE__BODY_LIST_GROUPS, &resp);
    if (rc == SL_OK) {
        rc =
            sl_client_names_dup(resp->list_groups->groups, resp->list_groups->n_groups, out, count);
    }
    sl_response_free(resp);
    return rc;
}

/* Owned copies of a response's names (for sluice_groups_free); sets the
 * "out of memory" error on failure. */
int sl_client_names_dup(char *const *names, size_t n, char ***out, size_t *count)
{
    char **copy = n > 0 ? calloc(n, sizeof(*copy)) : NULL;
    int rc = n > 0 && copy == NULL ? SL_ENOMEM : SL_OK;
    for (size_t i = 0; rc == SL_OK && i < n; i++) {
        copy[i] = strdup(names[i]);
        rc = copy[i] == NULL ? SL_ENOMEM : SL_OK;
    }
    if (rc != SL_OK) {
        sl_client_set_error("out of memory");
        sluice_groups_free(copy, n);
        return rc;
    }
    *out = copy;
    *count = n;
    return SL_OK;
}

int sluice_group_lag(sluice_client *c, const char *group, const char *stream,
                     struct sluice_shard_lag **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    Sluice__V1__GroupLag body = SLUICE__V1__GROUP_LAG__INIT;
    body.group = (char *)group;
    body.stream = (char *)stream;
    sl_request req = SLUICE__V1__REQUEST__INIT;
    req.body_case = SLUICE__V1__REQUEST__BODY_GROUP_LAG;
    req.group_lag = &body;
    sl_response *resp = NULL;
    int rc = group_call(c, stream, group, &req, SLUICE__V1__RESPONSE__BODY_GROUP_LAG, &resp);
    size_t n = rc == SL_OK ? resp->group_lag->n_shards : 0;
    struct sluice_shard_lag *lag = n > 0 ? calloc(n, sizeof(*lag)) : NULL;
    if (n > 0 && lag == NULL) {
        sl_client_set_error("out of memory");
        rc = SL_ENOMEM;
    }
    for (size_t i = 0; rc == SL_OK && i < n; i++) {
        const Sluice__V1__ShardLag *l = resp->group_lag->shards[i];
        lag[i] = (struct sluice_shard_lag){l->shard, l->checkpoint, l->tail_seq, l->records_behind,
                                           l->ms_behind};
    }
    sl_response_free(resp);
    if (rc != SL_OK) {
        free(lag);
        return rc;
    }
    /* On a cluster the group's home may hold no replica of some shards: their tails come
     * from their leaders (as describe asks them; ms_behind stays the home's estimate). */
    struct sluice_stream_info *si = NULL;
    if (n > 0 && sl_client_route_cluster(c) && sluice_stream_describe(c, stream, &si) == SL_OK) {
        for (size_t i = 0; i < n; i++) {
            for (uint32_t k = 0; k < si->shards_len; k++) {
                if (si->shards[k].shard == lag[i].shard) {
                    lag[i].tail_seq = si->shards[k].next_seq;
                    lag[i].records_behind = lag[i].tail_seq > lag[i].checkpoint
                                                ? lag[i].tail_seq - lag[i].checkpoint
                                                : 0;
                }
            }
        }
    }
    sluice_stream_info_free(si);
    *out = lag;
    *count = n;
    return SL_OK;
}
