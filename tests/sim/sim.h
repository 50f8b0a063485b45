/* sim.h - the deterministic replication simulator's shared state (tests/sim, #14).
 *
 * One seed gives one exact run: an own PRNG (splitmix64), a simulated clock in
 * microseconds, one event heap ordered by (time, sequence), no threads, no real time and
 * no system call inside the loop. Brokers run the real broker/cluster/repl.c replicas and
 * controller.c against sim_meta.c (an in-memory model of meta.h's ZooKeeper semantics)
 * over a simulated network and simulated disks; sim_check.c checks the invariants after
 * every event. docs/REPLICATION.md ("The simulator") describes the faults and the checks.
 */
#ifndef SL_SIM_H
#define SL_SIM_H

#include "broker/cluster/controller.h"
#include "broker/cluster/meta.h"
#include "broker/cluster/repl.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SIM_BROKERS_MAX 5
#define SIM_SHARDS_MAX  4
#define SIM_LOG_CAP     8192 /* records per replica log */
#define SIM_VALUES_MAX  8192 /* produced values per run */
#define SIM_TRACE_RING  64   /* last events kept for a violation's report */

struct sim;
typedef void (*sim_fn)(struct sim *s, void *p, uint64_t a, uint64_t b);

struct sim_ev {
    uint64_t t, seq;
    int broker;   /* -1: not tied to a broker process */
    uint32_t inc; /* the broker's incarnation it was meant for */
    sim_fn fn;
    void *p;
    uint64_t a, b;
};

struct sim_entry {
    uint64_t value;
    int32_t epoch;
};

/* One replica's disk: what a crash keeps (durable) and what the process sees (vol). */
struct sim_disk {
    struct sim_entry vol[SIM_LOG_CAP];
    int64_t vol_n;
    struct sim_entry dur[SIM_LOG_CAP];
    int64_t dur_n;
    int64_t start, dur_start; /* first offset kept (retention, a reset); entries below: absent */
    bool extends;          /* vol = dur + appended records (no truncate since the last fsync) */
    int32_t dur_led_epoch; /* the epoch file's last_led_epoch, durable */
    uint32_t ops;          /* operations queued */
    uint64_t busy_until;   /* completions are FIFO */
};

struct sim_pending {
    int64_t end;
    uint32_t first_value; /* index into sim.values */
    uint32_t n_values;
};

struct sim_rep {
    struct sl_repl r;
    struct sim_disk disk;
    struct sl_ctrl_state meta; /* last state read (leader_session kept for ISR writes) */
    bool have_meta;
    struct sim_pending pend[256];
    uint32_t pend_head, pend_n;
    int32_t saving_led; /* last_led_epoch when the latest SAVE effect was issued */
    int32_t saves[SL_REPL_DISK_INFLIGHT_MAX];
    uint32_t saves_head, saves_n;
    int64_t prev_hw; /* checks: HW never decreases in one incarnation */
    int64_t checked; /* checks: [0, checked) compared with the committed history */
};

struct sim_broker {
    int id;
    bool up;
    uint32_t inc; /* incarnation: bumped at every crash */
    uint64_t paused_until;
    bool fatal_pending;
    struct sl_meta *meta; /* this incarnation's current session (NULL while down) */
    bool registered;
    struct sl_ctrl *ctrl;
    struct sim_rep rep[SIM_SHARDS_MAX];
};

enum sim_outcome { SIM_PENDING, SIM_OK, SIM_FAILED, SIM_UNKNOWN };

struct sim_value {
    int shard;
    enum sim_outcome outcome;
    int64_t offset; /* where the leader put it (OK values) */
    int32_t epoch;
};

struct sim_cfg {
    uint64_t seed;
    int brokers, shards, rf;
    uint32_t min_insync;
    uint64_t duration_us, settle_us;
    uint64_t session_timeout_us;
    uint64_t replica_lag_ms;
    double p_loss, p_dup, p_meta_eagain, p_fsync_fail;
    uint32_t faults; /* how many fault events to inject */
    bool trace;
    int mutation;
};

struct sim_meta_store; /* sim_meta.c */

struct sim {
    struct sim_cfg cfg;
    uint64_t rng;
    uint64_t now;
    uint64_t seq, steps;
    struct sim_ev *heap;
    size_t heap_n, heap_cap;

    struct sim_broker b[SIM_BROKERS_MAX];
    bool cut[SIM_BROKERS_MAX][SIM_BROKERS_MAX]; /* messages from i to j are dropped */
    bool cut_meta[SIM_BROKERS_MAX];             /* broker i cannot reach the store */
    struct sim_meta_store *ms;

    struct sim_value values[SIM_VALUES_MAX];
    uint32_t n_values;
    /* the committed history per shard: every replica's prefix below its HW is a prefix */
    struct sim_entry committed[SIM_SHARDS_MAX][SIM_LOG_CAP];
    int64_t committed_n[SIM_SHARDS_MAX];
    int32_t acker[SIM_SHARDS_MAX][4096]; /* epoch -> broker that acked in it, -1 none */
    int32_t ctrl_owner[4096];            /* controller epoch -> broker active in it */

    char trace[SIM_TRACE_RING][160];
    uint32_t trace_n;
    bool violated;
    bool calm; /* the quiet period: delays short */
    uint64_t acks_ok, acks_failed, msgs, faults_done, elections;
    /* reassignments (sim_main.c): a stream of their own so seeds without one run as before */
    uint64_t mrng;
    uint32_t move_n[SIM_SHARDS_MAX]; /* > 0: shard k was asked to move to move_target[k] */
    int32_t move_target[SIM_SHARDS_MAX][SL_REPL_REPLICAS_MAX];
    uint64_t n_moves, n_moved;
    /* a move cancelled (sim_main.c): its replicas when asked (move_from_n of them), and
     * whether a cancel request was written; the final check takes either end */
    uint32_t move_from_n[SIM_SHARDS_MAX];
    int32_t move_from[SIM_SHARDS_MAX][SL_REPL_REPLICAS_MAX];
    bool move_cancel[SIM_SHARDS_MAX];
    uint64_t n_cancels, n_cancelled;
    /* retention trimming a replica's head (sim_main.c): a stream of its own, as moves */
    uint64_t trng;
    uint64_t n_trims, n_resets, n_drops;
    /* what the run exercised (summed over seeds by sim_main) */
    uint64_t n_truncations, n_epoch_reqs, n_diverging, n_fsync_fail, n_expired, n_leaders,
        n_stale_acks, n_torn;
};

/* sim_core.c */
uint64_t sim_rand(struct sim *s);
uint64_t sim_below(struct sim *s, uint64_t n); /* uniform in [0, n) */
bool sim_chance(struct sim *s, double p);
void sim_at(struct sim *s, uint64_t t, int broker, sim_fn fn, void *p, uint64_t a, uint64_t b);
bool sim_step(struct sim *s); /* runs the next event; false when none */
void sim_log(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Every event, for --trace only (formatting each one would slow thousands of seeds). */
#define sim_trace(s, ...)                                                                          \
    do {                                                                                           \
        if ((s)->cfg.trace) {                                                                      \
            sim_log((s), __VA_ARGS__);                                                             \
        }                                                                                          \
    } while (0)
void sim_violation(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool sim_broker_alive(const struct sim *s, int b); /* up and not paused */

/* sim_meta.c: the metadata store model */
struct sim_meta_store *sim_meta_store_new(struct sim *s);
void sim_meta_store_free(struct sim_meta_store *ms);
/* A new session (client handle) for broker b; its events run as that broker's. */
struct sl_meta *sim_meta_connect(struct sim *s, int b, sl_meta_session_cb cb, void *arg);
/* A session for broker b registered as /brokers/ids/<b> (ephemeral), its events ignored
 * (the controller benchmarks' brokers, which only crash). */
struct sl_meta *sim_meta_register(struct sim *s, int b);
/* The broker process died: its handle stops (no callback runs); the server-side session
 * lives on until it times out. */
void sim_meta_abandon(struct sl_meta *m);
void sim_meta_tick(struct sim *s); /* session liveness; called every 100 ms */
/* Reads a node directly (checks only). */
bool sim_meta_peek(struct sim *s, const char *path, struct sl_ctrl_state *st);
/* Creates a persistent node directly, with no call and no latency (benchmark set-up, an
 * operator's request); false when it exists already (nothing written). */
bool sim_meta_put(struct sim *s, const char *path, const uint8_t *data, size_t len);
/* Sets a node's data (its version + 1), or removes a node without children, directly: the
 * watches fire as for a call. False when the node is missing (or has children). */
bool sim_meta_set(struct sim *s, const char *path, const uint8_t *data, size_t len);
bool sim_meta_remove(struct sim *s, const char *path);
/* Server-side statistics (the failover benchmark). */
uint64_t sim_meta_ops(const struct sim *s);
void sim_meta_set_costs(struct sim *s, uint64_t latency_us, uint64_t read_us, uint64_t write_us);

/* sim_broker.c */
void sim_broker_start(struct sim *s, int b);
void sim_broker_crash(struct sim *s, int b);
/* Retention on broker b's replica of shard k: its log now starts at x (<= its HW and the
 * committed history's end). */
void sim_broker_trim(struct sim *s, int b, int k, int64_t x);
void sim_produce(struct sim *s, int shard);
void sim_broker_tick(struct sim *s, void *p, uint64_t a, uint64_t b);
void sim_restart_ev(struct sim *s, void *p, uint64_t broker, uint64_t unused);
bool sim_broker_event_free(const struct sim_ev *ev); /* frees a pending event's payload */
bool sim_meta_event_free(const struct sim_ev *ev);
extern struct sim *g_sim;

/* sim_check.c */
void sim_check_step(struct sim *s);
void sim_check_ack(struct sim *s, int b, int shard, uint32_t value);
void sim_check_truncate(struct sim *s, int b, int shard, int64_t end);
/* A replica drops its copy (it is no longer named): never one the store has in the ISR. */
void sim_check_drop(struct sim *s, int b, int shard);
void sim_check_final(struct sim *s);

#endif /* SL_SIM_H */
