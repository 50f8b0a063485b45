/* assign.h - spreading a stream's shards over the members of a consumer
 * group: balanced by count, sticky, moving as few shards as it can.
 *
 * Pure: no I/O, no allocation, no clock; the coordinator (members.c) keeps
 * the state and calls this whenever its membership changes.
 */
#ifndef SL_ASSIGN_H
#define SL_ASSIGN_H

#include <stdint.h>

#define SL_ASSIGN_NONE    UINT32_MAX /* a shard without an owner */
#define SL_ASSIGN_MEMBERS_MAX 1024u  /* members of one group (as shards of a stream) */

/* owners[i] is shard i's current owner (a member index < n_members, or
 * SL_ASSIGN_NONE; an index >= n_members counts as none: a member that left).
 * Writes the new owner of every shard into out[] (out may be owners).
 * Guarantees, with n_members > 0: every shard has an owner; each member owns
 * floor(n/m) or ceil(n/m) shards; a shard whose owner stays within its share
 * keeps it; the members already holding the most get the ceil shares, so the
 * number of shards that change owner is the least possible. With no member,
 * every shard is SL_ASSIGN_NONE. */
void sl_assign_balance(uint32_t n_shards, const uint32_t *owners, uint32_t n_members,
                       uint32_t *out);

#endif
