/* outq.c - a growable byte queue (see outq.h). Invariant: rd <= wr <= cap. */
#include "broker/http/outq.h"

#include "common/assert.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

#define OUTQ_MIN_BYTES 4096u
/* An emptied buffer larger than this is freed: idle connections hold no big buffers. */
#define OUTQ_KEEP_BYTES (64u << 10)

int sl_outq_push(struct sl_outq *q, const void *p, size_t n)
{
    SL_ASSERT(q->rd <= q->wr && q->wr <= q->cap);
    if (n == 0) {
        return SL_OK;
    }
    if (n > q->cap - q->wr) {
        size_t live = q->wr - q->rd;
        if (live <= q->rd && n <= q->cap - live) {
            memmove(q->buf, q->buf + q->rd, live); /* moves <= bytes consumed since */
            q->rd = 0;
            q->wr = live;
        } else {
            size_t c = q->cap < OUTQ_MIN_BYTES ? OUTQ_MIN_BYTES : q->cap;
            while (c - live < n) {
                if (c > SIZE_MAX / 2) {
                    return SL_ENOMEM;
                }
                c *= 2;
            }
            uint8_t *b = malloc(c);
            if (b == NULL) {
                return SL_ENOMEM;
            }
            if (live > 0) {
                memcpy(b, q->buf + q->rd, live);
            }
            free(q->buf);
            q->buf = b;
            q->cap = c;
            q->rd = 0;
            q->wr = live;
        }
    }
    memcpy(q->buf + q->wr, p, n);
    q->wr += n;
    SL_ASSERT(q->wr <= q->cap);
    return SL_OK;
}

void sl_outq_drop(struct sl_outq *q, size_t n)
{
    SL_ASSERT(n <= q->wr - q->rd);
    q->rd += n;
    if (q->rd == q->wr) {
        q->rd = 0;
        q->wr = 0;
        if (q->cap > OUTQ_KEEP_BYTES) {
            sl_outq_fini(q);
        }
    }
}

void sl_outq_fini(struct sl_outq *q)
{
    free(q->buf);
    q->buf = NULL;
    q->rd = 0;
    q->wr = 0;
    q->cap = 0;
}
