/* chan.h - a single-producer single-consumer channel of fixed-size messages
 * between two threads: lock-free, bounded, never blocking the sender.
 *
 * A power-of-two array of slots with a head (consumer) and a tail (producer)
 * index, each on its own cache line; the producer fills a slot and publishes
 * it with a release store of the tail, the consumer reads the tail with an
 * acquire load (so everything the producer wrote before a put is visible to
 * the consumer after the matching get). When the ring is full the producer
 * keeps messages in a local overflow array, in order, and moves them in at
 * its next sl_chan_flush: a sender never blocks and never drops.
 *
 * Wake-ups are the user's: `posted` says something was put since the user
 * last cleared it (the receiver should be woken, e.g. through an eventfd
 * with a read armed on its ring: sl_chan_wake).
 *
 * Threading: put/flush/posted on the producer's thread only, get on the
 * consumer's only; init/fini while neither runs.
 */
#ifndef SL_CHAN_H
#define SL_CHAN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_chan {
    _Alignas(64) _Atomic uint32_t head; /* next slot to read (consumer) */
    _Alignas(64) _Atomic uint32_t tail; /* next slot to write (producer) */
    _Alignas(64) uint8_t *slots;
    uint32_t slot_count; /* a power of two */
    uint32_t msg_bytes;
    /* producer side only */
    uint8_t *ovf;
    uint32_t ovf_len;
    uint32_t ovf_cap;
    bool posted; /* put since the receiver was last woken */
};

/* Errors: SL_ENOMEM, SL_EINVAL (slot_count not a power of two, msg_bytes 0). */
int sl_chan_init(struct sl_chan *c, uint32_t slot_count, uint32_t msg_bytes);
void sl_chan_fini(struct sl_chan *c); /* idempotent */
/* Copies msg_bytes from `m` in; out of memory for the overflow list asserts
 * (the list is bounded by the user's requests in flight). */
void sl_chan_put(struct sl_chan *c, const void *m);
/* Moves overflowed messages into the ring while there is room (news to the
 * receiver: sets posted). */
void sl_chan_flush(struct sl_chan *c);
/* Copies the next message out; false when there is none. */
bool sl_chan_get(struct sl_chan *c, void *m);
/* Adds 1 to the eventfd `efd` (retrying EINTR): a read armed on the
 * receiver's ring completes. Any thread. */
void sl_chan_wake(int efd);

#endif
