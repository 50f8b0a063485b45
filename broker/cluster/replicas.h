/* replicas.h - the broker's replica manager (#14): one sl_repl (repl.h) per replicated shard
 * this broker holds, driven on the main loop; its effects become shard appends, reads and
 * truncates, peer messages and metadata writes (docs/REPLICATION.md, "The replica manager").
 *
 * Threading: the main loop only.
 */
#ifndef SL_CLUSTER_REPLICAS_H
#define SL_CLUSTER_REPLICAS_H

#include "broker/cluster/repl.h"

#include <stdint.h>

struct sl_replicas;

/* Who leads shard `shard` of `stream` and its replicas, as this broker last read the shard's
 * state (m->version -1 never). SL_ENOTFOUND: no replicated state known for that shard (a
 * single broker: rs == NULL; the caller answers itself as the leader). */
int sl_replicas_route(const struct sl_replicas *rs, const char *stream, uint32_t shard,
                      struct sl_repl_meta *m);

#endif /* SL_CLUSTER_REPLICAS_H */
