/* sns_janitor.c - finishes, from the loop's tick (every second), what the
 * SNS subscription calls start but do not finish in the request (see
 * sns_subs.c): deletes the queue group of an unsubscribed subscription
 * (retried while the state store fails), makes the group of a changed subscription again with its
 * new filter and dead-letter settings and puts its push target back, and
 * drops subscriptions left unconfirmed for 3 days, and those whose topic's
 * stream was deleted by other means (the CLI). Everything it acts on is
 * marked in the subscriptions file, so a restart resumes it.
 *
 * One engine call at a time; the subscriptions are visited from a rotating
 * cursor, so one failing group holds back no other.
 * Threading: the main loop; engine callbacks may run before the call returns.
 */
#include "broker/api/sns_call.h"
#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/queue.h"
#include "broker/push/push.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One engine call at a time (s->busy); the subscription is found again by
 * id in each callback, since an API call may have changed the store. */
struct janitor_op {
    struct sl_sns *sns;
    struct sl_engine *e;
    struct sl_push *push;
    char id[SL_SNS_ID_MAX + 1];
};

static struct sl_sns_sub *find_any(const struct sl_sns_store *st, const char *id)
{
    for (uint32_t i = 0; i < st->n; i++) {
        if (strcmp(st->subs[i]->id, id) == 0) {
            return st->subs[i];
        }
    }
    return NULL;
}

static void janitor_done(struct janitor_op *op)
{
    op->sns->busy = false;
    free(op);
}

static void on_regrouped(void *ctx, int err, const char *gwhy)
{
    struct janitor_op *op = ctx;
    struct sl_sns_sub *s = find_any(op->sns->store, op->id);
    char why[SL_SNS_WHY_MAX];
    if (s == NULL || (s->flags & SL_SNS_SUB_DELETED) != 0) {
        janitor_done(op); /* unsubscribed meanwhile: the next run deletes the group */
        return;
    }
    if (err != SL_OK) {
        sl_warn("sns", "%s:%s: making its group again: %s (retrying)", s->topic, s->id, gwhy);
        janitor_done(op);
        return;
    }
    struct sl_push_target t;
    sns_target_of(s, &t);
    int rc = op->push != NULL ? sl_push_set(op->push, &t, why, sizeof(why)) : SL_OK;
    if (rc == SL_OK) {
        s->flags &= ~(uint32_t)SL_SNS_SUB_REGROUP;
        sns_save(op->sns, why, sizeof(why));
        sl_info("sns", "subscription %s:%s: its group was made again with the new settings",
                s->topic, s->id);
    } else {
        sl_warn("sns", "%s:%s: its push target: %s", s->topic, s->id, why);
    }
    janitor_done(op);
}

static void on_group_gone(void *ctx, int err, const char *gwhy)
{
    struct janitor_op *op = ctx;
    struct sl_sns_sub *s = find_any(op->sns->store, op->id);
    char why[SL_SNS_WHY_MAX];
    if (s == NULL || (err != SL_OK && err != SL_ENOTFOUND)) {
        if (s != NULL) {
            sl_warn("sns", "%s:%s: deleting its group: %s (retrying)", s->topic, s->id, gwhy);
        }
        janitor_done(op); /* tried again on a later tick */
        return;
    }
    if ((s->flags & SL_SNS_SUB_DELETED) != 0) {
        sl_sns_store_remove(op->sns->store, s);
        sns_save(op->sns, why, sizeof(why));
        janitor_done(op);
        return;
    }
    struct sl_qgroup_config g;
    sns_group_config(s, &g);
    sl_queue_create_group(op->e, s->topic, s->id, &g, on_regrouped, op);
}

void sns_janitor(struct sl_sns *sns, struct sl_engine *e, struct sl_push *push, uint64_t now_ms)
{
    (void)now_ms;
    struct sl_sns_store *st = sns->store;
    uint64_t wall = sl_clock_wall_ms();
    char why[SL_SNS_WHY_MAX];
    bool gone = sl_catalog_unloaded(e->catalog) == 0; /* every stream is known: absent = gone */
    for (uint32_t k = 0; k < st->n; k++) {
        uint32_t i = (sns->cursor + k) % st->n;
        struct sl_sns_sub *s = st->subs[i];
        bool pending = (s->flags & (SL_SNS_SUB_CONFIRMED | SL_SNS_SUB_DELETED)) == 0;
        if (pending && wall > s->created_ms + SNS_PENDING_TTL_MS) {
            sl_info("sns", "subscription %s:%s was not confirmed within 3 days: dropped", s->topic,
                    s->id);
            sl_sns_store_remove(st, s);
            sns_save(sns, why, sizeof(why));
            return;
        }
        if (gone && sl_catalog_find(e->catalog, s->topic) == NULL) {
            /* the topic's stream was deleted by other means (`sluice stream delete`) */
            sl_info("sns", "subscription %s:%s: its topic is gone: dropped", s->topic, s->id);
            if (push != NULL && (s->flags & SL_SNS_SUB_CONFIRMED) != 0) {
                sl_push_remove(push, s->topic, s->id, why, sizeof(why));
            }
            sl_sns_store_remove(st, s);
            sns_save(sns, why, sizeof(why));
            return;
        }
        if ((s->flags & (SL_SNS_SUB_DELETED | SL_SNS_SUB_REGROUP)) == 0) {
            continue;
        }
        struct janitor_op *op = calloc(1, sizeof(*op));
        if (op == NULL) {
            return;
        }
        *op = (struct janitor_op){.sns = sns, .e = e, .push = push};
        snprintf(op->id, sizeof(op->id), "%s", s->id);
        sns->cursor = i + 1; /* the next run starts past this one */
        sns->busy = true;
        sl_queue_delete_group(e, s->topic, s->id, on_group_gone, op);
        return;
    }
}
