/* replicas_delete.c - a cluster stream deleted in ZooKeeper by this broker (replicas.h,
 * sl_replicas_delete_stream). /streams/<name> goes first: every broker acts on /streams, and
 * drops its copy once its listing no longer has the name (replicas_meta.c, "deleted
 * streams"); then the shards' states and their parent /shards/<name>.
 *
 * One multi when it holds everything (up to SL_META_MULTI_MAX - 2 shards). Beyond, a chain
 * as a creation's (replicas_create.c): the first multi makes an ephemeral token
 * /creates/<name>.<broker>.<ms> and removes /streams/<name> and the first states, every later
 * one checks the token, the last removes the parent and the token. While the token exists a
 * creation of the name is refused (it names the token); a chain cut short by the end of this
 * broker's session leaves states without /streams/<name> and without a token, which the next
 * creation of the name removes (replicas_create.c, "leftovers"). ZooKeeper applies a
 * session's requests in order, so a creation on another broker cannot slip its states
 * between the chain's multis: it would find /shards/<name> (EEXIST), then the token.
 */
#include "broker/cluster/replicas_int.h"

#include "broker/engine/catalog.h"
#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rs_delete {
    struct sl_replicas *rs;
    char name[SL_CTRL_NAME_MAX];
    sl_replicas_deleted_fn cb;
    void *ctx;
    uint32_t multis_out;
    uint32_t multis_sent;
    int first_err; /* the multi that removes /streams/<name> */
    int rest_err;  /* the first error of the others (states left for the next creation) */
    size_t states;
};

static void delete_end(struct rs_delete *d)
{
    struct sl_replicas *rs = d->rs;
    char why[SL_CTRL_NAME_MAX + 256];
    int err = d->first_err;
    if (err == SL_ENOTFOUND) {
        snprintf(why, sizeof(why), "stream %s not found in the cluster (deleted meanwhile?)",
                 d->name);
    } else if (err != SL_OK) {
        snprintf(why, sizeof(why), "deleting stream %s in ZooKeeper failed: %s; retry", d->name,
                 sl_strerror(err));
    } else {
        why[0] = '\0';
        if (d->rest_err != SL_OK) {
            sl_warn("cluster",
                    "stream %s is deleted, but removing its shard states from ZooKeeper "
                    "failed (%s): the next creation of that name removes them",
                    d->name, sl_strerror(d->rest_err));
        }
        /* Dropped here now rather than at the /streams watch's listing, which comes after
         * this answer (ZooKeeper answers a session in order): the asker reads its delete. */
        struct sl_stream *st = sl_catalog_find(rs->e->catalog, d->name);
        if (st != NULL && st->cluster) {
            rs_stream_drop(rs, st, "was deleted (asked of this broker)");
        }
    }
    d->cb(d->ctx, err, why);
    free(d);
}

static void on_delete_multi(void *arg, int err, int failed_op)
{
    (void)failed_op;
    struct rs_delete *d = arg;
    SL_ASSERT(d->multis_out > 0);
    bool first = d->multis_out == d->multis_sent; /* (answered in the order sent) */
    d->multis_out--;
    if (first) {
        d->first_err = err;
    } else if (err != SL_OK && d->rest_err == SL_OK) {
        d->rest_err = err;
    }
    if (d->multis_out == 0) {
        delete_end(d);
    }
}

static void on_states(void *arg, int err, const char *const *names, size_t n)
{
    struct rs_delete *d = arg;
    struct sl_replicas *rs = d->rs;
    if ((err != SL_OK && err != SL_ENOTFOUND) || rs->meta == NULL) {
        d->first_err = err != SL_OK && err != SL_ENOTFOUND ? err : SL_ECLOSED;
        delete_end(d);
        return;
    }
    if (err == SL_ENOTFOUND) {
        n = 0; /* (no states: only /streams/<name> to remove) */
    }
    d->states = n;
    /* The body, in order: /streams/<name>, the states, /shards/<name> (when listed). */
    size_t body = 1 + n + (err == SL_OK);
    char *paths = malloc((body + 1) * SL_META_PATH_MAX);
    struct sl_meta_op *ops = malloc(SL_META_MULTI_MAX * sizeof(*ops));
    if (paths == NULL || ops == NULL) {
        free(paths);
        free(ops);
        d->first_err = SL_ENOMEM;
        delete_end(d);
        return;
    }
    for (size_t i = 0; i < body; i++) {
        char *p = paths + i * SL_META_PATH_MAX;
        if (i == 0) {
            snprintf(p, SL_META_PATH_MAX, RS_PATH_STREAMS "/%s", d->name);
        } else if (i <= n) {
            snprintf(p, SL_META_PATH_MAX, RS_PATH_SHARDS "/%s/%s", d->name, names[i - 1]);
        } else {
            snprintf(p, SL_META_PATH_MAX, RS_PATH_SHARDS "/%s", d->name);
        }
    }
    char *token = paths + body * SL_META_PATH_MAX;
    snprintf(token, SL_META_PATH_MAX, RS_PATH_CREATES "/%s.%d.%" PRIu64, d->name,
             rs->cfg.self, sl_clock_wall_ms());
    bool chain = body > SL_META_MULTI_MAX;
    int rc = SL_OK;
    size_t i = 0;
    while (rc == SL_OK && i < body) {
        size_t m = 0;
        if (chain && i == 0) {
            ops[m++] = (struct sl_meta_op){
                .type = SL_META_OP_CREATE, .path = token, .flags = SL_META_EPHEMERAL};
        } else if (chain) {
            ops[m++] = (struct sl_meta_op){
                .type = SL_META_OP_CHECK, .path = token, .version = -1};
        }
        /* (a place kept for the token's removal in the chain's last multi) */
        while (i < body && m < SL_META_MULTI_MAX - (chain ? 1 : 0)) {
            ops[m++] = (struct sl_meta_op){
                .type = SL_META_OP_REMOVE, .path = paths + i * SL_META_PATH_MAX, .version = -1};
            i++;
        }
        if (chain && i == body) {
            ops[m++] = (struct sl_meta_op){
                .type = SL_META_OP_REMOVE, .path = token, .version = -1};
        }
        SL_ASSERT(m <= SL_META_MULTI_MAX);
        rc = sl_meta_multi(rs->meta, ops, m, on_delete_multi, d);
        if (rc == SL_OK) {
            d->multis_out++;
            d->multis_sent++;
        }
    }
    free(paths);
    free(ops);
    if (d->multis_sent == 0) {
        d->first_err = rc;
        delete_end(d);
    } else if (rc != SL_OK && d->rest_err == SL_OK) {
        d->rest_err = rc; /* (the chain's later multis fail on the token's check) */
    }
}

int sl_replicas_delete_stream(struct sl_replicas *rs, const char *name,
                              sl_replicas_deleted_fn cb, void *ctx, char *why, size_t why_len)
{
    if (rs->meta == NULL) {
        snprintf(why, why_len, RS_NO_SESSION_WHY);
        return SL_ENOT_LEADER;
    }
    if (strlen(name) >= SL_CTRL_NAME_MAX / 2) {
        snprintf(why, why_len, "stream %s not found", name);
        return SL_ENOTFOUND;
    }
    struct rs_delete *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        snprintf(why, why_len, "out of memory");
        return SL_ENOMEM;
    }
    d->rs = rs;
    snprintf(d->name, sizeof(d->name), "%s", name);
    d->cb = cb;
    d->ctx = ctx;
    char path[SL_META_PATH_MAX];
    snprintf(path, sizeof(path), RS_PATH_SHARDS "/%s", name);
    int rc = sl_meta_children(rs->meta, path, NULL, NULL, on_states, d);
    if (rc != SL_OK) {
        free(d);
        snprintf(why, why_len, "ZooKeeper refused the request: %s; retry", sl_strerror(rc));
        return rc;
    }
    return SL_OK;
}
