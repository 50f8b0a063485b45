/* chan.c - single-producer single-consumer message channel (see chan.h). */
#include "common/chan.h"

#include "common/assert.h"
#include "common/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sl_chan_init(struct sl_chan *c, uint32_t slot_count, uint32_t msg_bytes)
{
    memset(c, 0, sizeof(*c));
    if (slot_count == 0 || (slot_count & (slot_count - 1)) != 0 || msg_bytes == 0) {
        return SL_EINVAL;
    }
    c->slots = calloc(slot_count, msg_bytes);
    c->slot_count = slot_count;
    c->msg_bytes = msg_bytes;
    return c->slots != NULL ? SL_OK : SL_ENOMEM;
}

void sl_chan_fini(struct sl_chan *c)
{
    free(c->slots);
    free(c->ovf);
    c->slots = NULL;
    c->ovf = NULL;
    c->ovf_len = c->ovf_cap = 0;
    atomic_store(&c->head, 0);
    atomic_store(&c->tail, 0);
}

static bool chan_try_put(struct sl_chan *c, const void *m)
{
    uint32_t tail = atomic_load_explicit(&c->tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&c->head, memory_order_acquire);
    if (tail - head == c->slot_count) {
        return false;
    }
    memcpy(c->slots + (size_t)(tail & (c->slot_count - 1)) * c->msg_bytes, m, c->msg_bytes);
    atomic_store_explicit(&c->tail, tail + 1, memory_order_release);
    return true;
}

/* What it moves is news to the receiver (posted): the receiver may have
 * drained the ring and gone to sleep since the messages were first put -
 * without a wake-up it would never look (a broker with 20,000 shards hung so
 * after a restart: a worker's stats outgrew its out ring in one turn,
 * integration_scale). */
void sl_chan_flush(struct sl_chan *c)
{
    uint32_t i = 0;
    while (i < c->ovf_len && chan_try_put(c, c->ovf + (size_t)i * c->msg_bytes)) {
        i++;
    }
    if (i > 0) {
        memmove(c->ovf, c->ovf + (size_t)i * c->msg_bytes, (size_t)(c->ovf_len - i) * c->msg_bytes);
        c->ovf_len -= i;
        c->posted = true;
    }
}

void sl_chan_put(struct sl_chan *c, const void *m)
{
    c->posted = true;
    if (c->ovf_len == 0 && chan_try_put(c, m)) {
        return;
    }
    if (c->ovf_len == c->ovf_cap) {
        uint32_t cap = c->ovf_cap == 0 ? 256 : c->ovf_cap * 2;
        uint8_t *n = realloc(c->ovf, (size_t)cap * c->msg_bytes);
        /* Bounded by the requests in flight (connections x max_inflight);
         * without memory for it the broker cannot keep its promises. */
        SL_ASSERT(n != NULL);
        c->ovf = n;
        c->ovf_cap = cap;
    }
    memcpy(c->ovf + (size_t)c->ovf_len * c->msg_bytes, m, c->msg_bytes);
    c->ovf_len++;
}

bool sl_chan_get(struct sl_chan *c, void *m)
{
    uint32_t head = atomic_load_explicit(&c->head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(&c->tail, memory_order_acquire);
    if (head == tail) {
        return false;
    }
    memcpy(m, c->slots + (size_t)(head & (c->slot_count - 1)) * c->msg_bytes, c->msg_bytes);
    atomic_store_explicit(&c->head, head + 1, memory_order_release);
    return true;
}

void sl_chan_wake(int efd)
{
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(efd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
    /* (blocking eventfds: a read armed on the ring waits for this write) */
}
