/* filter_set.h - many compiled event patterns matched against one record at
 * once (an EventBridge bus's rules, a topic's subscriptions), and a small
 * memo of the answers so that the queue groups of one stream match a record
 * once between them.
 *
 * A set holds up to SL_FILTER_SET_MAX filters, each in a numbered slot. Its
 * answer for a record is the bitset of the slots whose filter matches,
 * always equal to calling sl_filter_match on each filter alone. What makes it
 * cheaper than that walk is an index on what most rules have: a field whose
 * alternatives are all exact strings or prefixes ({"source": ["shop"]}). A
 * pattern (body or attribute scope) with such a field at its top level is
 * filed under one of them, (path, value) -> slot, and is matched in full only
 * when the record holds that value (or prefix) at that path; the others
 * (top-level $or only, numeric, anything-but or case-folded only, ...) are
 * matched in full for every record.
 *
 * Threading: a set and a memo each have one owner (the main loop in the
 * broker); the filters they borrow are immutable.
 */
#ifndef SL_FILTER_SET_H
#define SL_FILTER_SET_H

#include <stdbool.h>
#include <stdint.h>

struct sl_filter;
struct sl_filter_subject;
struct sl_filter_set;
struct sl_filter_memo;

#define SL_FILTER_SET_MAX   1024u /* filters in one set: the groups of one stream */
#define SL_FILTER_SET_WORDS (SL_FILTER_SET_MAX / 64u) /* uint64_t words of an answer */
#define SL_FILTER_SET_NONE  UINT32_MAX                /* no slot */

_Static_assert(SL_FILTER_SET_MAX % 64u == 0, "an answer is whole words");

/* An empty set; NULL when out of memory. */
struct sl_filter_set *sl_filter_set_new(void);
/* Frees the set (takes it), not the filters it borrows; NULL is a no-op. */
void sl_filter_set_free(struct sl_filter_set *fs);

/* Adds `f` (borrowed until it is removed; immutable) in the lowest free slot,
 * returned in *slot. Errors: SL_ELIMIT (SL_FILTER_SET_MAX filters already),
 * SL_ENOMEM (the set is unchanged). */
int sl_filter_set_add(struct sl_filter_set *fs, const struct sl_filter *f, uint32_t *slot);

/* Removes the filter in `slot` (which must hold one); the slot is free. */
void sl_filter_set_remove(struct sl_filter_set *fs, uint32_t slot);

/* Filters in the set; of them, those filed in the index. */
uint32_t sl_filter_set_count(const struct sl_filter_set *fs);
uint32_t sl_filter_set_indexed(const struct sl_filter_set *fs);

/* An identity of the set's current content: changes at every add and remove
 * and is never shared with another set of the process (a memo keys on it). */
uint64_t sl_filter_set_version(const struct sl_filter_set *fs);

/* Sets bit i of `bits` (SL_FILTER_SET_WORDS words) exactly when slot i holds
 * a filter that matches the subject's record; the other bits are cleared.
 * Reads the record's value as JSON at most once (through the subject, shared
 * with any sl_filter_match on it) and only if a body filter needs it. */
void sl_filter_set_match(const struct sl_filter_set *fs, struct sl_filter_subject *s,
                         uint64_t *bits);

static inline bool sl_filter_set_bit(const uint64_t *bits, uint32_t slot)
{
    return (bits[slot / 64u] >> (slot % 64u)) & 1u;
}

/* ---- the memo: answers by (set version, shard, seq) ---- */

#define SL_FILTER_MEMO_ENTRIES 2048u /* records remembered; ~290 KiB per memo */

_Static_assert((SL_FILTER_MEMO_ENTRIES & (SL_FILTER_MEMO_ENTRIES - 1u)) == 0,
               "the memo is indexed by a mask");

/* An empty memo of SL_FILTER_MEMO_ENTRIES answers; NULL when out of memory. */
struct sl_filter_memo *sl_filter_memo_new(void);
void sl_filter_memo_free(struct sl_filter_memo *m); /* takes it; NULL is a no-op */

/* The answer stored for record (shard, seq) of the set at `version`, or NULL
 * (never stored, or evicted since by another record). */
const uint64_t *sl_filter_memo_find(const struct sl_filter_memo *m, uint64_t version,
                                    uint32_t shard, uint64_t seq);

/* The set's answer for the subject's record (shard, seq): the stored one, or
 * computed now and stored in place of whatever shared its entry. Borrowed
 * until the next call on the memo. */
const uint64_t *sl_filter_memo_match(struct sl_filter_memo *m, const struct sl_filter_set *fs,
                                     struct sl_filter_subject *s, uint32_t shard, uint64_t seq);

#endif
