/* member.h - this broker's membership in the cluster (#14), on the metadata
 * store's interface only (meta.h), so the replication simulator can run it on
 * its model of ZooKeeper as the broker runs it on ZooKeeper.
 *
 * A broker registers as the ephemeral node /brokers/ids/<node id> whose data
 * is its broker record (below; docs/REPLICATION.md "Metadata layout"), and
 * keeps the list of live brokers from a watch on /brokers/ids. At start, an id
 * held by another live session refuses the broker (SL_MEMBER_REFUSED). When
 * the session expires, the member closes that store, opens a new one through
 * the owner's opener and registers again.
 *
 * Threading: the owner's loop (the store's callbacks and sl_member_tick).
 */
#ifndef SL_CLUSTER_MEMBER_H
#define SL_CLUSTER_MEMBER_H

#include "broker/cluster/meta.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_MEMBER_ADDR_MAX    256u     /* "host:port", NUL included */
#define SL_MEMBER_VERSION_MAX 64u      /* the broker's version string, NUL included */
#define SL_MEMBER_RECORD_MAX  1024u    /* an encoded record */
#define SL_MEMBER_BROKERS_MAX 1024u    /* live brokers listed; more are left out (logged) */
#define SL_MEMBER_NODE_ID_MAX 1000000u /* node ids are 1..this */
#define SL_MEMBER_RETRY_MS    1000u    /* a failed step (lost connection) is tried again */
#define SL_MEMBER_LIST_WINDOW 32u      /* reads of broker records outstanding while listing */

/* One broker as its record says (and its node's owner session). */
struct sl_member_info {
    uint32_t node_id;
    uint64_t start_ms; /* wall clock, when the broker started */
    char native_addr[SL_MEMBER_ADDR_MAX];
    char http_addr[SL_MEMBER_ADDR_MAX]; /* "" when the broker has no HTTP listener */
    char version[SL_MEMBER_VERSION_MAX];
    int64_t session_id; /* not in the record: the node's ephemeral owner */
};

/* The broker record, format 1 (little-endian):
 *   "SLBK" | u16 format (1) | u16 flags (0) | u32 node_id | u64 start_ms |
 *   u16 len + native_addr | u16 len + http_addr | u16 len + version
 * Strings are printable ASCII without NUL, each shorter than its field;
 * native_addr is not empty. A newer format (> 1) may append fields: a
 * decoder of format 1 reads what it knows and ignores the rest; format 1
 * itself has no trailing bytes. */
#define SL_MEMBER_RECORD_FORMAT 1u

/* Returns the encoded length, or 0 when `in` does not fit or is invalid. */
size_t sl_member_record_encode(const struct sl_member_info *in, uint8_t *out, size_t cap);
/* Bytes from the store (another broker wrote them): SL_OK or SL_EPROTO.
 * out->session_id is left 0. */
int sl_member_record_decode(const uint8_t *in, size_t len, struct sl_member_info *out);

enum sl_member_state {
    SL_MEMBER_JOINING,    /* not registered yet (connecting, or the store is unreachable) */
    SL_MEMBER_REGISTERED, /* this broker's node exists in the current session */
    SL_MEMBER_REFUSED,    /* at start: the node id is held by another live broker */
};

/* Opens a store whose session events go to (on_session, session_arg); what
 * sl_meta_zk_open does in the broker. Returns SL_OK or an error with `why`. */
typedef int (*sl_member_open_fn)(void *ctx, sl_meta_session_cb on_session, void *session_arg,
                                 struct sl_meta **out, char *why, size_t whylen);
/* The list of live brokers changed (or the connection did): read it again. */
typedef void (*sl_member_changed_fn)(void *ctx);

struct sl_member;

/* Starts joining: opens a store and registers `self` (copied) once it
 * connects. Errors: SL_EINVAL (a record that does not encode), SL_ENOMEM, or
 * the opener's error (with `why`). */
int sl_member_start(const struct sl_member_info *self, sl_member_open_fn open, void *open_ctx,
                    sl_member_changed_fn changed, void *changed_ctx, struct sl_member **out,
                    char *why, size_t whylen);

/* Retries what failed; call every loop tick (100 ms is plenty). */
void sl_member_tick(struct sl_member *mb, uint64_t now_ms);

/* The state, and when REFUSED the reason (naming the fix) in `why`. */
enum sl_member_state sl_member_state(const struct sl_member *mb, char *why, size_t whylen);

/* True while the store's session is connected. */
bool sl_member_connected(const struct sl_member *mb);
/* How long (ms, monotonic now_ms) the store has been disconnected - the session may expire
 * meanwhile without this broker hearing of it until it reconnects; 0 while connected. */
uint64_t sl_member_cut_ms(const struct sl_member *mb, uint64_t now_ms);

/* The live brokers, sorted by node id, this one included once registered;
 * borrowed until the next callback of the store or tick. */
size_t sl_member_brokers(const struct sl_member *mb, const struct sl_member_info **list);

/* This broker's own record. */
const struct sl_member_info *sl_member_self(const struct sl_member *mb);

/* Who hears of changes (replaces what sl_member_start was given). */
void sl_member_set_changed(struct sl_member *mb, sl_member_changed_fn changed, void *ctx);

/* The store of the session this broker is registered in, NULL while it is not (joining, or
 * the session expired); *generation counts registrations, so a new session shows as a new
 * number. Shard replicas use it: a broker leads only within the session it registered in,
 * the one the controller elected it in (docs/REPLICATION.md). */
struct sl_meta *sl_member_store(const struct sl_member *mb, uint32_t *generation);

/* Closes the store (the node goes with the session) and frees the member. */
void sl_member_stop(struct sl_member *mb);

#endif /* SL_CLUSTER_MEMBER_H */
