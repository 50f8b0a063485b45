/* meta_zk.h - the cluster metadata store (meta.h) on Apache ZooKeeper.
 *
 * The only module that includes zookeeper.h (meta_zk.c, meta_zk_thread.c and
 * their private meta_zk_int.h). It uses the C client's
 * asynchronous API only: the library's two threads (I/O and completion) copy
 * every result and event into a FIFO under a mutex and write an eventfd; the
 * owner's loop reads that eventfd through its ring and runs the callbacks on
 * its own thread (meta.h's threading rule). Nothing on the loop waits for
 * ZooKeeper, except sl_meta_close, which may wait for the library to flush
 * its close request (bounded by the library; milliseconds normally, 1.5 s
 * measured with the server paused).
 *
 * Close never runs the ring (it may be called from any callback, the store's
 * own included): it answers every outstanding call with SL_ECLOSED at once,
 * and the store's memory goes when the ring's read of its eventfd ends, at
 * the loop's next turn. Before sl_ring_fini, run the ring until
 * sl_meta_zk_live_stores() is 0.
 */
#ifndef SL_CLUSTER_META_ZK_H
#define SL_CLUSTER_META_ZK_H

#include "broker/cluster/meta.h"

#include <stddef.h>
#include <stdint.h>

struct sl_ring;

/* Calls whose callbacks have not run yet. Each may carry a result of up to
 * SL_META_DATA_MAX bytes copied off the library's thread, so this bounds the
 * memory waiting for the loop (256 x 1 MiB in the worst case; metadata
 * nodes are a few hundred bytes in practice). */
#define SL_META_ZK_INFLIGHT_MAX 256u
/* ... of which reads (get, children) never take the last ones: a burst of reads (every
 * shard's state after a large creation or a failover) leaves room for writes - a creation's
 * multis, a leader's ISR change, the controller's fenced elections - which would otherwise
 * fail SL_ELIMIT until the reads drained. */
#define SL_META_ZK_WRITE_RESERVE 32u
/* Watches set and not yet fired (one record each until it fires or the store
 * closes). */
#define SL_META_ZK_WATCHES_MAX 4096u
/* Session events waiting for the loop; past this the newest one is replaced
 * (the owner sees the latest state; EXPIRED is never replaced). */
#define SL_META_ZK_SESSION_EVENTS_MAX 16u
/* The connect string "host:port[,host:port...][/chroot]". */
#define SL_META_ZK_CONNECT_MAX 1024u
/* Session timeouts the server is asked for (it clamps to its own
 * minSessionTimeout/maxSessionTimeout, by default 2 and 20 ticks). */
#define SL_META_ZK_SESSION_MIN_MS 100u
#define SL_META_ZK_SESSION_MAX_MS 600000u

/* Opens a store on `connect` ("127.0.0.1:2181,10.0.0.2:2181/sluice": the
 * servers, then an optional chroot that every path is relative to and that is
 * created, with its parents, at the first connection). Returns at once; the
 * session is established in the background and reported to on_session
 * (SL_META_CONNECTED once the chroot exists). Calls made before that are
 * queued by the client and sent when connected (or fail with SL_EAGAIN if
 * the connection attempt fails).
 *
 * `ring` is the owner's loop (borrowed until close): every callback runs from
 * its sl_ring_run. Errors: SL_EINVAL (a malformed connect string or timeout,
 * with `why` naming it and the fix), SL_ENOMEM, SL_ESYS (the eventfd, or the
 * client library refused the handle). */
int sl_meta_zk_open(const char *connect, uint32_t session_timeout_ms, struct sl_ring *ring,
                    sl_meta_session_cb on_session, void *session_arg, struct sl_meta **out,
                    char *why, size_t whylen);

/* Stores opened and not yet freed (the loop thread's count). */
uint32_t sl_meta_zk_live_stores(void);

/* Test only: expires the store's session from outside, the way a server does
 * when the session times out: opens a second handle with the same session id
 * and password and closes it. Blocks (up to 10 s) on the caller's thread.
 * Returns SL_OK, SL_ECLOSED (no live session) or SL_EAGAIN (could not
 * connect). */
int sl_meta_zk_expire_for_test(struct sl_meta *m);

#endif /* SL_CLUSTER_META_ZK_H */
