/* seqgate.h - a shard owner's order check for producers' batches.
 *
 * A producer may have several batches of a shard in flight (#12). They reach
 * the shard's owner in producer_seq order, but an append can fail there with
 * an error the producer resends on (the shard closing, the gate's own
 * refusal) while the batches behind it are already on their way; storing
 * those would put them before the failed one's resend and break the order
 * per key. The gate remembers, per shard, the producers whose batch failed
 * so and at which sequence: their later batches are refused (SL_ECONFLICT:
 * the front-end answers "resend in order", a retriable error) until that
 * sequence comes again. A failure the producer does not resend on (disk
 * full, a fatal shard, a checksum mismatch: reported to the application,
 * which then goes on) holds nothing back: only records resent by the
 * producer itself can be reordered. An entry lapses after SL_SEQGATE_TTL_MS
 * (a producer that went away).
 *
 * Threading: the shard owner's thread only. Memory: nothing until a batch
 * with a producer id fails; then one block of SL_SEQGATE_MAX entries.
 */
#ifndef SL_SEQGATE_H
#define SL_SEQGATE_H

#include <stdint.h>

#define SL_SEQGATE_MAX 32u          /* producers with a failed batch, per shard */
#define SL_SEQGATE_TTL_MS 120000u   /* beyond every client retry schedule */

struct sl_seqgate;

/* Whether batch (pid, seq) may be appended now: SL_OK, or SL_ECONFLICT when
 * an earlier batch of pid failed and has not been sent again. A batch that
 * is that failed one clears the entry. pid 0 (no producer id): SL_OK. */
int sl_seqgate_admit(struct sl_seqgate **g, uint64_t pid, uint64_t seq, uint64_t now_ms);
/* Batch (pid, seq) failed with `err`: when a producer resends on it
 * (SL_ECLOSED, SL_EAGAIN), later batches of pid wait for it. Keeps the
 * earliest failed sequence of a producer. With every entry taken, the oldest
 * is dropped (logged). */
void sl_seqgate_failed(struct sl_seqgate **g, uint64_t pid, uint64_t seq, int err,
                       uint64_t now_ms);
/* Entries held (tests, stats). */
uint32_t sl_seqgate_count(const struct sl_seqgate *g);
void sl_seqgate_free(struct sl_seqgate **g); /* NULL-safe */

#endif
