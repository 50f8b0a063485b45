/* outq.h - a growable byte queue for response bytes not yet handed to the
 * wire (internal to broker/http). Appends copy; reads peek and drop from the
 * front. Amortised linear: the live bytes move down only when no more than the
 * bytes already consumed, otherwise the buffer doubles. Callers bound its
 * length (out_bytes_max, a whole response body). Single-threaded.
 */
#ifndef SL_HTTP_OUTQ_H
#define SL_HTTP_OUTQ_H

#include <stddef.h>
#include <stdint.h>

struct sl_outq {
    uint8_t *buf;
    size_t rd, wr, cap;
};

/* Appends `n` bytes (borrowed). Errors: SL_ENOMEM (nothing appended). */
int sl_outq_push(struct sl_outq *q, const void *p, size_t n);
static inline size_t sl_outq_len(const struct sl_outq *q)
{
    return q->wr - q->rd;
}
static inline const uint8_t *sl_outq_peek(const struct sl_outq *q)
{
    return q->buf + q->rd;
}
/* Drops `n` <= len bytes from the front; frees a large buffer once empty. */
void sl_outq_drop(struct sl_outq *q, size_t n);
/* Frees the buffer; idempotent. */
void sl_outq_fini(struct sl_outq *q);

#endif
