/* repl_codec.h - the replication messages (broker/cluster/repl.h) on the native protocol
 * (#14, docs/REPLICATION.md "Messages"): struct sl_repl_msg <-> ReplMessage.
 *
 * Both ends use it: a leader decodes a follower's Replicate and encodes its answer; a
 * follower encodes its request and decodes the answer. Decoding trusts nothing: every field
 * is range-checked, a FETCH_RESP's batches must be whole stored batches (header and checksum
 * verified, their sequence, count and leader epoch as the message says), contiguous from the message's
 * offset, within the replica's per-answer bounds (SL_REPL_FETCH_BATCHES_MAX batches, and
 * SL_REPL_FETCH_BYTES_MAX bytes unless one batch alone is larger); anything else is refused with a reason,
 * never passed to the state machine.
 */
#ifndef SL_NATIVE_REPL_CODEC_H
#define SL_NATIVE_REPL_CODEC_H

#include "broker/cluster/repl.h"
#include "proto/sluice.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/* *out from `in` (borrowed: out->batches point into `in`'s bytes, through `batches`, which
 * has room for SL_REPL_FETCH_BATCHES_MAX). Errors: SL_EPROTO with why (what is wrong). */
int sl_repl_codec_decode(const Sluice__V1__ReplMessage *in, struct sl_repl_msg *out,
                         struct sl_repl_batch *batches, char *why, size_t why_len);

/* Room for encoding one message: its ReplMessage and its batches. */
struct sl_repl_wire {
    Sluice__V1__ReplMessage msg;
    Sluice__V1__ReplBatch batch[SL_REPL_FETCH_BATCHES_MAX];
    Sluice__V1__ReplBatch *ptr[SL_REPL_FETCH_BATCHES_MAX];
};

/* w->msg from `in` (its batches borrowed: valid while in->batches are). in->n_batches is at
 * most SL_REPL_FETCH_BATCHES_MAX (asserted). */
void sl_repl_codec_encode(const struct sl_repl_msg *in, struct sl_repl_wire *w);

#endif
