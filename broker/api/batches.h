/* batches.h - reading back fetched batches in the HTTP front-ends (Kinesis
 * GetRecords, the console's record browser): one decompression context and
 * one scratch buffer for the whole front-end, never one per request.
 *
 * Threading: the main loop (the state is the loop's).
 */
#ifndef SL_API_BATCHES_H
#define SL_API_BATCHES_H

#include "storage/batch.h"

#include <stddef.h>
#include <stdint.h>

/* The batch header at `p` (avail bytes of a fetch answer); SL_ECORRUPT
 * when the batch runs past `avail`. */
int sl_api_batch_peek(const uint8_t *p, size_t avail, struct sl_batch_header *h);

/* An iterator over the records of a peeked batch; a compressed batch is
 * decompressed into the shared scratch, valid until the next call.
 * SL_ETOOBIG (larger than the engine ever writes), SL_ENOMEM, SL_ECORRUPT. */
int sl_api_batch_iter(const uint8_t *p, const struct sl_batch_header *h,
                      struct sl_batch_iter *it);

#endif
