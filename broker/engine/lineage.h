/* lineage.h - a stream's shards over time: hash ranges, parents, open or
 * closed (#16, resharding). Pure rules, no I/O: the catalog keeps a lineage
 * per stream and persists it; the produce path routes by it; consumers ask
 * it which shards may be read.
 *
 * The model is Kinesis's. The open shards partition the 64-bit hash space:
 * sorted by range, contiguous, no overlap, from 0 to 2^64 - 1. Splitting open
 * shard P at hash H closes P and opens C1 = [P.start, H - 1] and
 * C2 = [H, P.end]; merging adjacent open shards A and B closes both and opens
 * one child over their union. A closed shard keeps its range and stays
 * readable until retention removes it. Shard ids are never reused: a child
 * gets the next id. A child is read only after every ancestor has been read to
 * its end, so the records of one key stay in order across a change.
 *
 * Invariants (sl_lineage_check; asserted after every change):
 *   - open shards partition [0, UINT64_MAX] exactly;
 *   - a closed shard's range is covered exactly by its children (one child of
 *     a merge covers both parents and more, two children of a split cover it);
 *   - parents have smaller ids than their children (the lineage is a DAG in
 *     id order);
 *   - ids are dense: shard i of the array has id i;
 *   - a gone shard is closed.
 */
#ifndef SL_LINEAGE_H
#define SL_LINEAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Shards a stream has ever had (open and closed, until retention forgets
 * closed ones): bounded so a lineage's memory is bounded. */
#define SL_LINEAGE_SHARDS_MAX 8192u
#define SL_LINEAGE_NONE UINT32_MAX
/* A plan keeps an open boundary within 1/SL_LINEAGE_TOLERANCE of a target
 * width of where the target wants one. */
#define SL_LINEAGE_TOLERANCE 1024u

struct sl_lineage_shard {
    uint64_t start; /* inclusive hash range */
    uint64_t end;
    uint32_t parent[2]; /* SL_LINEAGE_NONE when absent; a merge has two */
    uint32_t child[2];  /* set when closed; a merge's parents share one child */
    /* When the shard closed (ms since the epoch; the time a shard opened is
     * its parent's closed_ms, or the stream's creation): what retention and
     * ListShards' timestamp filters go by. 0 while open, and for a shard
     * closed before the time was kept (read then as "closed at load"). */
    uint64_t closed_ms;
    /* Retention removed a closed shard's files (it expired as a whole): the
     * id, range and parents stay, so children and readers still know the
     * lineage, but the shard has no log and no records. end_seq is where its
     * log ended (a reader there moves on to the children). */
    uint64_t end_seq;
    bool closed;
    bool gone; /* implies closed */
};

struct sl_lineage {
    struct sl_lineage_shard *shard; /* shard[i] has id i */
    uint32_t n;
    uint32_t cap;
    uint32_t open; /* open shards */
    uint32_t gone; /* closed shards retention removed */
};

/* A uniform stream of `count` shards (ids 0..count-1, the ranges of
 * common/partition.h). Errors: SL_EINVAL (0 or beyond the maximum),
 * SL_ENOMEM. */
int sl_lineage_init(struct sl_lineage *l, uint32_t count);
void sl_lineage_fini(struct sl_lineage *l);
/* *dst (uninitialised or finished) becomes a copy of src. Errors: SL_ENOMEM. */
int sl_lineage_copy(struct sl_lineage *dst, const struct sl_lineage *src);
/* *l (uninitialised) from `n` shards as persisted (ids 0..n-1; `open` is
 * counted here), checked with sl_lineage_check. Errors: SL_ECORRUPT (why
 * says which rule), SL_EINVAL (0 or more than SL_LINEAGE_SHARDS_MAX),
 * SL_ENOMEM. */
int sl_lineage_restore(struct sl_lineage *l, const struct sl_lineage_shard *shards, uint32_t n,
                       char *why, size_t whylen);

/* Splits open shard `id` at `at` (the second child starts there; `at` must
 * be inside the range and not its start). children[0..1] get the new ids.
 * Errors (why filled): SL_ENOTFOUND, SL_ESHARD_CLOSED, SL_EINVAL, SL_ELIMIT,
 * SL_ENOMEM. Nothing changes on error. */
int sl_lineage_split(struct sl_lineage *l, uint32_t id, uint64_t at, uint32_t children[2],
                     char *why, size_t whylen);
/* The middle of open shard `id`'s range (Kinesis's default split point). */
uint64_t sl_lineage_middle(const struct sl_lineage *l, uint32_t id);
/* Merges open shards `a` and `b`, which must be adjacent (either order);
 * *child gets the new id. Errors as split. */
int sl_lineage_merge(struct sl_lineage *l, uint32_t a, uint32_t b, uint32_t *child, char *why,
                     size_t whylen);

/* The open shard whose range holds `hash`. A scan of the shards: the
 * produce path will keep the open shards in range order beside it. */
uint32_t sl_lineage_route(const struct sl_lineage *l, uint64_t hash);

/* One step of a reshard plan. */
struct sl_reshard_step {
    bool merge;     /* else a split */
    uint64_t at;    /* split: the hash the second child starts at;
                       merge: the start of the right-hand shard */
};

/* The splits and merges that take the open shards to `target` uniform
 * ranges (Kinesis's UpdateShardCount UNIFORM_SCALING): a split at every
 * target boundary the open shards lack, then a merge across every open
 * boundary the target lacks. Steps are named by hash, not by id, since ids
 * are given as the steps run (sl_lineage_apply). *n gets the count (at most
 * `cap`; SL_ELIMIT if more are needed). An open boundary within
 * 1/SL_LINEAGE_TOLERANCE of a target width of a target boundary stays
 * (uniform widths of different counts differ by rounding). */
int sl_lineage_plan(const struct sl_lineage *l, uint32_t target, struct sl_reshard_step *steps,
                    uint32_t cap, uint32_t *n);
/* Runs one step of a plan. Errors as split and merge. */
int sl_lineage_apply(struct sl_lineage *l, const struct sl_reshard_step *step, char *why,
                     size_t whylen);

/* Closed shard `id` is gone: retention removed it, its log ended at
 * `end_seq`. Asserted: closed and not gone already. */
void sl_lineage_retire(struct sl_lineage *l, uint32_t id, uint64_t end_seq);

/* Whether shard `id` may be read: every ANCESTOR has been read to its end, as
 * `finished(ctx, shard)` says of one shard (closed, and read up to its last
 * record); a gone ancestor counts as finished (retention took its records),
 * its own ancestors are still asked. Parents alone are not enough: a change that splits or merges a
 * shard it made in the same step leaves an empty closed shard between a
 * parent still holding records and its grandchild, and an empty shard is
 * trivially read to its end. Each ancestor is asked once (ids descend: a
 * parent's id is smaller than its child's), no allocation. Shards without
 * parents always may. */
bool sl_lineage_readable(const struct sl_lineage *l, uint32_t id,
                         bool (*finished)(void *ctx, uint32_t shard), void *ctx);

/* Checks the invariants above; SL_OK or SL_ECORRUPT with why (a lineage
 * read from disk is checked before use). */
int sl_lineage_check(const struct sl_lineage *l, char *why, size_t whylen);

#endif
