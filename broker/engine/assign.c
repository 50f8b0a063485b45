/* assign.c - the sticky balanced assignor (see assign.h). */
#include "broker/engine/assign.h"

#include "common/assert.h"

#include <stdbool.h>
#include <string.h>

void sl_assign_balance(uint32_t n_shards, const uint32_t *owners, uint32_t n_members,
                       uint32_t *out)
{
    SL_ASSERT(n_members <= SL_ASSIGN_MEMBERS_MAX);
    if (n_members == 0) {
        for (uint32_t i = 0; i < n_shards; i++) {
            out[i] = SL_ASSIGN_NONE;
        }
        return;
    }
    uint32_t held[SL_ASSIGN_MEMBERS_MAX]; /* shards each member holds now */
    uint32_t cap[SL_ASSIGN_MEMBERS_MAX];  /* its share */
    uint32_t kept[SL_ASSIGN_MEMBERS_MAX]; /* its shards in the result so far */
    memset(held, 0, n_members * sizeof(held[0]));
    memset(kept, 0, n_members * sizeof(kept[0]));
    for (uint32_t i = 0; i < n_shards; i++) {
        if (owners[i] < n_members) {
            held[owners[i]]++;
        }
    }
    /* The ceil shares go to those holding the most (ties: lowest index):
     * a member keeping one more shard is one move fewer. */
    uint32_t base = n_shards / n_members, extra = n_shards % n_members;
    for (uint32_t j = 0; j < n_members; j++) {
        cap[j] = base;
    }
    for (uint32_t k = 0; k < extra; k++) {
        uint32_t best = UINT32_MAX;
        for (uint32_t j = 0; j < n_members; j++) {
            if (cap[j] == base && (best == UINT32_MAX || held[j] > held[best])) {
                best = j;
            }
        }
        cap[best]++;
    }
    /* Keep what fits the share, in shard order; the rest is free. */
    for (uint32_t i = 0; i < n_shards; i++) {
        uint32_t o = owners[i];
        if (o < n_members && kept[o] < cap[o]) {
            kept[o]++;
            out[i] = o;
        } else {
            out[i] = SL_ASSIGN_NONE;
        }
    }
    /* Free shards to the member furthest below its share. */
    for (uint32_t i = 0; i < n_shards; i++) {
        if (out[i] != SL_ASSIGN_NONE) {
            continue;
        }
        uint32_t best = 0;
        for (uint32_t j = 1; j < n_members; j++) {
            if (cap[j] - kept[j] > cap[best] - kept[best]) {
                best = j;
            }
        }
        SL_ASSERT(kept[best] < cap[best]);
        kept[best]++;
        out[i] = best;
    }
    for (uint32_t j = 0; j < n_members; j++) {
        SL_ASSERT(kept[j] == cap[j]);
    }
}
