/* controller_int.h - the controller's private structs, shared by controller.c (election,
 * brokers, reads and writes) and controller_create.c (stream creation); included by
 * nothing else. */
#ifndef SL_CLUSTER_CONTROLLER_INT_H
#define SL_CLUSTER_CONTROLLER_INT_H

#include "broker/cluster/controller.h"

#define PATH_CONTROLLER "/controller"
#define PATH_EPOCH      "/controller_epoch"
#define PATH_BROKERS    "/brokers/ids"
#define PATH_SHARDS     "/shards"
#define PATH_REASSIGN   "/reassign" /* requests: /reassign/<stream>:<k>, data "1,2,4" */

struct ctrl_shard {
    struct sl_ctrl *c;
    char name[SL_CTRL_NAME_MAX]; /* "<stream>/<k>" */
    struct sl_ctrl_state st;
    struct sl_ctrl_state next; /* what its multi in flight writes */
    bool loaded, busy, in_read_q, in_dirty_q, gone;
    bool in_move_q; /* in c->move_q: re-read while its move lasts */
    /* The state node's creation (struct sl_meta_stat.czxid): another one is the shard of a
     * stream deleted and created again under its name, whose versions start over. */
    int64_t czxid;
};

struct ctrl_stream {
    struct sl_ctrl *c;
    char name[SL_CTRL_NAME_MAX];
    uint32_t index; /* in c->streams */
    bool queued;    /* in c->list_q: its shards are to be listed */
    bool missing;   /* its last listing found no /shards/<stream> (deleted): no watch set */
};

/* One request under SL_CTRL_PATH_NOTIFY being read (controller.c). */
struct ctrl_notify_get {
    struct sl_ctrl *c;
    char path[SL_META_PATH_MAX];
};

struct ctrl_multi {
    struct sl_ctrl *c;
    bool used;
    uint32_t n;
    uint32_t shard[SL_META_MULTI_MAX];
};

struct ctrl_vec { /* a FIFO of shard indexes */
    uint32_t *v;
    size_t head, n, cap;
};

struct sl_ctrl {
    struct sl_ctrl_cfg cfg;
    struct sl_meta *meta;
    enum sl_ctrl_phase phase;
    int32_t epoch, epoch_version;

    int32_t live[SL_CTRL_BROKERS_MAX];
    int64_t session[SL_CTRL_BROKERS_MAX];
    uint32_t n_live;
    bool brokers_known;
    /* a listing in progress: ids and sessions gathered until every get answered */
    int32_t pend_id[SL_CTRL_BROKERS_MAX];
    int64_t pend_session[SL_CTRL_BROKERS_MAX];
    uint32_t pend_n, pend_waiting;
    int32_t todo_id[SL_CTRL_BROKERS_MAX]; /* listed ids whose node is still to be read */
    uint32_t todo_n, todo_next;
    bool listing, relist, list_failed;
    bool streams_relist; /* a stream listing could not be sent: sl_ctrl_tick lists again */

    struct ctrl_shard **shards;
    size_t n_shards, cap_shards;
    uint32_t *index; /* open addressing over shard names: index + 1, 0 = empty */
    size_t index_cap;
    struct ctrl_stream **streams;
    size_t n_streams, cap_streams;
    uint32_t stream_lists;  /* children listings outstanding (/shards and streams) */
    struct ctrl_vec list_q; /* streams whose shards are to be listed */

    struct ctrl_vec read_q, dirty_q;
    uint32_t reads_inflight;
    struct ctrl_multi multis[SL_CTRL_MULTIS_INFLIGHT_MAX];
    uint32_t multis_inflight;
    char scratch[SL_CTRL_MULTI_BYTES_MAX + SL_META_MULTI_MAX * (SL_META_PATH_MAX + 1)];

    /* /notify (SL_CTRL_PATH_NOTIFY): the requests being read and removed */
    uint32_t notify_out;  /* gets and removes outstanding */
    bool notify_listing;  /* a listing is outstanding */
    bool notify_relist;   /* list again once these are done (more than a round, a failure) */
    /* reassignments (controller_move.c) */
    struct ctrl_vec move_q;  /* shards seen moving: re-read every SL_CTRL_MOVE_POLL_TICKS */
    uint32_t move_ticks;
    uint32_t moves_inflight; /* request reads and their multis outstanding */
    bool moves_listing, moves_relist;

    struct sl_ctrl_stats stats;
};

/* controller.c's own steps, for controller_move.c */
void sl_ctrl_pump(struct sl_ctrl *c);
void sl_ctrl_mark_read(struct sl_ctrl *c, uint32_t i);
void sl_ctrl_mark_dirty(struct sl_ctrl *c, uint32_t i);
long sl_ctrl_find(const struct sl_ctrl *c, const char *name); /* shard index, or -1 */
void sl_ctrl_go_dead(struct sl_ctrl *c);
/* A listing the controller asked for (/notify, /reassign) came back: it is no longer
 * outstanding (*listing). True when its names are to be taken; false when the controller is
 * no longer active, its session closed (it goes dead), or the listing failed (*relist: the
 * tick lists again; no watch was set). */
bool sl_ctrl_listed(struct sl_ctrl *c, int err, bool *listing, bool *relist);
bool sl_ctrl_vec_push(struct ctrl_vec *q, uint32_t x);

/* controller_notify.c: requests to decide a shard again (/notify) */
void sl_ctrl_notify_list(struct sl_ctrl *c, bool watch); /* lists /notify (with its watch) */
void sl_ctrl_notify_tick(struct sl_ctrl *c);               /* relists after a failure */

/* controller_move.c: reassignment requests (/reassign) and moves in progress */
void sl_ctrl_moves_watch(void *arg, const char *path); /* lists /reassign (its watch too) */
void sl_ctrl_moves_tick(struct sl_ctrl *c); /* relists; re-reads moving shards */
void sl_ctrl_move_note(struct sl_ctrl *c, uint32_t i); /* shard i's state was replaced */

/* The index of broker `id` in live[0, n), or -1. */
int sl_ctrl_live_at(const int32_t *live, uint32_t n, int32_t id);

#endif /* SL_CLUSTER_CONTROLLER_INT_H */
