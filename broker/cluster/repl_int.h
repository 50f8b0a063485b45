/* repl_int.h - the replica state machine's parts, shared by its files:
 *   repl.c         inputs, invariants, the epoch cache, the leader
 *   repl_follow.c  the follower: fetching, divergence (KIP-101/279), truncate and reset
 * Nothing outside broker/cluster/repl*.c includes this file. Pure: no I/O, no clock.
 */
#ifndef SL_CLUSTER_REPL_INT_H
#define SL_CLUSTER_REPL_INT_H

#include "broker/cluster/repl.h"

#include <stdbool.h>
#include <stdint.h>

/* Test-only mutations (the simulator's --mutation; off in the broker). */
#ifdef SL_REPL_MUTATIONS
extern int sl_repl_mutation;
#define MUTATION(n) (sl_repl_mutation == (n))
#else
#define MUTATION(n) 0
#endif

enum { DISK_WRITE = 1, DISK_TRUNCATE = 2, DISK_SAVE = 3, DISK_RESET = 4 };
/* FIFO slots appends leave free: a role change queues a truncate and a save after them */
#define DISK_RESERVE 3u

/* repl.c */
struct sl_repl_effect *repl_fx_push(struct sl_repl *r, enum sl_repl_effect_type type);
void repl_send(struct sl_repl *r, const struct sl_repl_msg *m);
void repl_disk_push(struct sl_repl *r, uint8_t kind, int64_t end);
void repl_epochs_add(struct sl_repl *r, int32_t epoch, int64_t start);
void repl_epochs_truncate(struct sl_repl *r, int64_t end);
int32_t repl_last_log_epoch(const struct sl_repl *r);

/* repl_follow.c */
void repl_follower_request(struct sl_repl *r); /* the next FETCH or EPOCH_REQ, if due */
void repl_become_follower(struct sl_repl *r);
void repl_on_epoch_resp(struct sl_repl *r, const struct sl_repl_msg *m);
void repl_on_fetch_resp(struct sl_repl *r, const struct sl_repl_msg *m);

#endif
