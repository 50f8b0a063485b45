/* ctrl_run.c - the controller's life in sluiced (see ctrl_run.h). */
#include "broker/cluster/ctrl_run.h"

#include "broker/cluster/controller.h"
#include "common/assert.h"
#include "common/error.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

struct sl_ctrl_run {
    int32_t self;
    sl_member_open_fn open;
    void *open_ctx;
    struct sl_meta *meta;  /* NULL between a close and the next open */
    struct sl_ctrl *ctrl;  /* on meta; NULL with it */
    bool expired;          /* the session ended: start over at the next tick */
    bool was_active;       /* (for the log: won, lost) */
    uint64_t next_tick_ms;
    uint64_t retry_at_ms;  /* when to open again after a failed open */
};

static void on_session(void *arg, enum sl_meta_session ev)
{
    struct sl_ctrl_run *r = arg;
    if (ev == SL_META_EXPIRED) {
        r->expired = true; /* (not closed here: inside the store's own callback) */
    }
}

static int open_all(struct sl_ctrl_run *r, char *why, size_t whylen)
{
    SL_ASSERT(r->meta == NULL && r->ctrl == NULL);
    int rc = r->open(r->open_ctx, on_session, r, &r->meta, why, whylen);
    if (rc != SL_OK) {
        r->meta = NULL;
        return rc;
    }
    struct sl_ctrl_cfg cc = {.self = r->self};
    rc = sl_ctrl_new(&r->ctrl, &cc, r->meta);
    if (rc != SL_OK) {
        snprintf(why, whylen, "cannot start the controller: %s", sl_strerror(rc));
        sl_meta_close(r->meta);
        r->meta = NULL;
        r->ctrl = NULL;
    }
    r->expired = false;
    return rc;
}

/* The store first (no callback of it runs after its close), then the controller. */
static void close_all(struct sl_ctrl_run *r)
{
    if (r->meta != NULL) {
        sl_meta_close(r->meta);
        r->meta = NULL;
    }
    sl_ctrl_free(r->ctrl);
    r->ctrl = NULL;
}

int sl_ctrl_run_start(int32_t self, sl_member_open_fn open, void *open_ctx,
                      struct sl_ctrl_run **out, char *why, size_t whylen)
{
    struct sl_ctrl_run *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return SL_ENOMEM;
    }
    *r = (struct sl_ctrl_run){.self = self, .open = open, .open_ctx = open_ctx};
    int rc = open_all(r, why, whylen);
    if (rc != SL_OK) {
        free(r);
        return rc;
    }
    *out = r;
    return SL_OK;
}

void sl_ctrl_run_tick(struct sl_ctrl_run *r, uint64_t now_ms)
{
    bool dead = r->ctrl != NULL && sl_ctrl_phase(r->ctrl) == SL_CTRL_DEAD;
    if (r->ctrl != NULL && (r->expired || dead)) {
        sl_warn("cluster", "broker %" PRId32 ": the controller's %s; running for controller again "
                "with a new session",
                r->self, r->expired ? "ZooKeeper session expired" : "epoch was overtaken (deposed)");
        close_all(r);
        r->was_active = false;
        r->retry_at_ms = now_ms;
    }
    if (r->ctrl == NULL) {
        if (now_ms < r->retry_at_ms) {
            return;
        }
        char why[256];
        if (open_all(r, why, sizeof(why)) != SL_OK) {
            sl_warn("cluster", "broker %" PRId32 ": cannot run for controller: %s (tried again "
                    "in %u ms)", r->self, why, SL_CTRL_RUN_RETRY_MS);
            r->retry_at_ms = now_ms + SL_CTRL_RUN_RETRY_MS;
            return;
        }
    }
    if (now_ms >= r->next_tick_ms) {
        r->next_tick_ms = now_ms + SL_CTRL_RUN_TICK_MS;
        sl_ctrl_tick(r->ctrl);
    }
    bool active = sl_ctrl_phase(r->ctrl) == SL_CTRL_ACTIVE;
    if (active != r->was_active) {
        r->was_active = active;
        if (active) {
            sl_info("cluster", "broker %" PRId32 " is the controller (epoch %" PRId32 ")", r->self,
                    sl_ctrl_epoch(r->ctrl));
        }
    }
}

bool sl_ctrl_run_active(const struct sl_ctrl_run *r, int32_t *epoch)
{
    bool active = r != NULL && r->ctrl != NULL && !r->expired &&
                  sl_ctrl_phase(r->ctrl) == SL_CTRL_ACTIVE;
    if (epoch != NULL) {
        *epoch = active ? sl_ctrl_epoch(r->ctrl) : 0;
    }
    return active;
}

void sl_ctrl_run_stop(struct sl_ctrl_run *r)
{
    if (r == NULL) {
        return;
    }
    close_all(r);
    free(r);
}
