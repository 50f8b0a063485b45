/* controller_notify.c - requests to decide a shard again now (SL_CTRL_PATH_NOTIFY,
 * controller.h): the controller reads shard states without watches, so a broker that changed
 * a state in a way the controller must act on (a failed replica leaving its leadership, a
 * leader whose ISR completes a move) writes a sequential child of /notify naming the shard.
 * The controller watches the children, reads each (at most SL_CTRL_NOTIFY_ROUND_MAX per
 * listing), marks its shard to be read and decided again, and removes it.
 */
#include "broker/cluster/controller_int.h"

#include "common/assert.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void notify_done(struct sl_ctrl *c)
{
    SL_ASSERT(c->notify_out > 0);
    if (--c->notify_out == 0 && c->notify_relist && !c->notify_listing) {
        c->notify_relist = false;
        sl_ctrl_notify_list(c, false); /* (the watch set by the first listing is still armed) */
    }
}

static void on_notify_removed(void *arg, int err, const char *path)
{
    (void)err; /* gone already (another controller), or left for the next one: harmless */
    (void)path;
    struct sl_ctrl *c = arg;
    notify_done(c);
}

static void on_notify_data(void *arg, int err, const uint8_t *data, size_t len,
                           const struct sl_meta_stat *stat)
{
    struct ctrl_notify_get *g = arg;
    struct sl_ctrl *c = g->c;
    if (c->phase == SL_CTRL_ACTIVE && err == SL_OK) {
        char name[SL_CTRL_NAME_MAX];
        if (len > 0 && len < sizeof name) {
            memcpy(name, data, len);
            name[len] = '\0';
            long i = sl_ctrl_find(c, name);
            if (i >= 0) {
                sl_ctrl_mark_read(c, (uint32_t)i); /* read at its version now, then decided */
                c->stats.notified++;
            }
        }
        if (sl_meta_remove(c->meta, g->path, stat->version, on_notify_removed, c) == SL_OK) {
            c->notify_out++;
        } else {
            c->notify_relist = true;
        }
    } else if (c->phase == SL_CTRL_ACTIVE && err != SL_ENOTFOUND) {
        c->notify_relist = true;
    }
    free(g);
    notify_done(c);
    sl_ctrl_pump(c);
}

static void on_notify_children(void *arg, int err, const char *const *names, size_t n)
{
    struct sl_ctrl *c = arg;
    if (!sl_ctrl_listed(c, err, &c->notify_listing, &c->notify_relist)) {
        return;
    }
    c->notify_out++; /* held while the round is issued */
    for (size_t k = 0; k < n && k < SL_CTRL_NOTIFY_ROUND_MAX; k++) {
        struct ctrl_notify_get *g = malloc(sizeof(*g));
        if (g == NULL) {
            c->notify_relist = true;
            break;
        }
        g->c = c;
        snprintf(g->path, sizeof g->path, SL_CTRL_PATH_NOTIFY "/%s", names[k]);
        if (sl_meta_get(c->meta, g->path, NULL, NULL, on_notify_data, g) != SL_OK) {
            free(g);
            c->notify_relist = true;
            break;
        }
        c->notify_out++;
    }
    if (n > SL_CTRL_NOTIFY_ROUND_MAX) {
        c->notify_relist = true;
    }
    notify_done(c);
}

static void notify_watch(void *arg, const char *path)
{
    (void)path;
    struct sl_ctrl *c = arg;
    if (c->phase == SL_CTRL_ACTIVE) {
        sl_ctrl_notify_list(c, true);
    }
}

void sl_ctrl_notify_list(struct sl_ctrl *c, bool watch)
{
    if (c->notify_listing) {
        c->notify_relist = true;
        return;
    }
    if (sl_meta_children(c->meta, SL_CTRL_PATH_NOTIFY, watch ? notify_watch : NULL, c,
                         on_notify_children, c) == SL_OK) {
        c->notify_listing = true;
    } else {
        c->notify_relist = true;
    }
}

void sl_ctrl_notify_tick(struct sl_ctrl *c)
{
    if (c->notify_relist && c->notify_out == 0 && !c->notify_listing) {
        c->notify_relist = false;
        sl_ctrl_notify_list(c, true); /* (a failed listing set no watch) */
    }
}
