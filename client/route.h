/* route.h - the client's routing table for cluster mode (#14): the brokers, and who leads
 * each shard of the streams the client sends to, from Metadata answers; and the parser of a
 * bootstrap list ("H1:P1,H2:P2,..."). Library-internal and pure (no I/O, no locks, no
 * clock): conn.c keeps one table under its lock; tests/unit/test_route.c and
 * tests/fuzz/fuzz_route.c drive it alone.
 *
 * What a Metadata answer holds comes from a broker, so is checked before anything of it is
 * used: a refused answer (SL_EPROTO, with the reason) leaves the table as it was.
 */
#ifndef SL_CLIENT_ROUTE_H
#define SL_CLIENT_ROUTE_H

#include "client/sluice.h"
#include "proto/frame.h"

#include <stddef.h>
#include <stdint.h>

#define SL_ROUTE_BOOTSTRAP_MAX 16u   /* addresses in a bootstrap list */
#define SL_ROUTE_ADDR_MAX      256u  /* "host:port", NUL included (as the broker's record) */
#define SL_ROUTE_BROKERS_MAX   256u  /* brokers routed to (a connection each); more: ignored */
#define SL_ROUTE_STREAMS_MAX   64u   /* streams routed at once; the least recent is forgotten */
#define SL_ROUTE_SHARD_IDS_MAX 8192u /* a stream's lineage at most (docs/PROTOCOL.md) */
#define SL_ROUTE_NAME_MAX      128u  /* a stream's name, as the broker's limit */
#define SL_ROUTE_WHY_MAX       160u  /* room for the reason an answer or a list was refused */
#define SL_ROUTE_NONE          (-1)  /* no leader now / no broker */

_Static_assert(SLUICE_METADATA_STREAMS <= SL_ROUTE_STREAMS_MAX,
               "one Metadata answer fits the table");

struct sl_route_broker {
    int32_t node_id;
    char addr[SL_ROUTE_ADDR_MAX]; /* "" : the broker that answered (a single broker) */
};

struct sl_route_stream {
    char name[SL_ROUTE_NAME_MAX + 1];
    uint32_t n_ids;  /* leader[] covers shard ids 0 .. n_ids-1 */
    int32_t *leader; /* owned; by shard id; SL_ROUTE_NONE: no leader now, or id not listed */
    int32_t *epoch;  /* owned; by shard id */
    uint64_t used;   /* the table's clock when last learned: what eviction goes by */
};

struct sl_route {
    struct sl_route_broker *brokers; /* owned, SL_ROUTE_BROKERS_MAX */
    uint32_t n_brokers;
    int32_t self_id; /* the node id of the broker that answered last (SL_ROUTE_NONE: none yet) */
    int cluster;     /* the last answer came from a broker in a cluster */
    struct sl_route_stream streams[SL_ROUTE_STREAMS_MAX];
    uint32_t n_streams;
    uint64_t clock; /* counts applied answers */
};

/* Splits a bootstrap list into its addresses (each "host:port" or "[v6]:port", non-empty,
 * shorter than SL_ROUTE_ADDR_MAX) into out[0 .. *n). Errors: SL_EINVAL (an empty entry, an
 * address without a port, too long, or more than SL_ROUTE_BOOTSTRAP_MAX), with `why`. */
int sl_route_parse_list(const char *list, char (*out)[SL_ROUTE_ADDR_MAX], uint32_t *n,
                        char *why, size_t why_len);

/* An empty table. Errors: SL_ENOMEM. */
int sl_route_init(struct sl_route *r);
/* Frees the table; safe on a zeroed or a partly initialised one. Idempotent. */
void sl_route_fini(struct sl_route *r);

/* Takes a Metadata answer (`m`, borrowed): its brokers replace the table's (the first
 * SL_ROUTE_BROKERS_MAX), and its streams replace the entries of the same names (the least
 * recently learned ones give way when the table is full). Errors: SL_EPROTO (duplicate or
 * negative node ids, an address too long, more than one `self`, a stream name too long or
 * twice, shard ids not ascending or past SL_ROUTE_SHARD_IDS_MAX, a leader below -1, more
 * replicas than SLUICE_REPLICAS_MAX), SL_ENOMEM; the table is then unchanged and `why` says
 * what is wrong. */
int sl_route_apply(struct sl_route *r, const struct sluice_metadata *m, char *why,
                   size_t why_len);

/* Forgets `stream` (a deleted stream, or one to learn again). */
void sl_route_forget(struct sl_route *r, const char *stream);

/* The leader of shard `shard` of `stream`: SL_OK with *node (and *epoch when not NULL);
 * SL_ENOTFOUND when the table has no such stream or shard, or no leader for it now. */
int sl_route_leader(const struct sl_route *r, const char *stream, uint32_t shard, int32_t *node,
                    int32_t *epoch);

/* Copies a Metadata answer off the wire (`pb`, borrowed) into *out (owned; freed with
 * sluice_metadata_free). Only counts are checked here (what would not fit the public
 * structs); sl_route_apply checks the rest. Errors: SL_EPROTO (a shard with more replicas
 * or in-sync replicas than SLUICE_REPLICAS_MAX, or more streams than
 * SLUICE_METADATA_STREAMS), SL_ENOMEM; `why` says which. */
int sl_route_metadata_copy(const Sluice__V1__MetadataResponse *pb, struct sluice_metadata **out,
                           char *why, size_t why_len);

/* The shard whose leader is the home of consumer group `group` on `stream`
 * (common/partition.h sl_partition_group_shard over the ids the table has). Errors:
 * SL_ENOTFOUND (the stream is not in the table, or has no shard listed). */
int sl_route_group_shard(const struct sl_route *r, const char *stream, const char *group,
                         uint32_t *shard);

/* Whether the table has learned `stream`. */
int sl_route_knows(const struct sl_route *r, const char *stream);

/* The broker with `node_id`, or NULL. */
const struct sl_route_broker *sl_route_broker(const struct sl_route *r, int32_t node_id);

#endif /* SL_CLIENT_ROUTE_H */
