/* test_chan.c - common/chan.c, the SPSC message channel.
 *
 * Covers: messages come out in the order put, through the ring's wrap-around and through
 * the overflow list (more put than slots, then flushed as the consumer makes room), with
 * `posted` set by a put and by a flush that moved something; a full ring never drops;
 * init refuses a slot count that is not a power of two; and two threads, a producer
 * putting 200,000 numbered messages through 8 slots while a consumer takes them, see every
 * one once and in order (the acquire/release pairing: run under ASan/TSan in CI).
 */
#include "test.h"

#include "common/chan.h"
#include "common/error.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>

struct m {
    uint64_t seq;
    uint64_t pad[3]; /* a message larger than a word: copied whole */
};

TEST(order_through_wrap_and_overflow)
{
    struct sl_chan c;
    CHECK_EQ(sl_chan_init(&c, 3, sizeof(struct m)), SL_EINVAL);
    sl_chan_fini(&c);
    CHECK_EQ(sl_chan_init(&c, 4, sizeof(struct m)), SL_OK);
    CHECK(!c.posted);
    uint64_t next_put = 0, next_get = 0;
    for (int round = 0; round < 50; round++) {
        uint32_t puts = (uint32_t)(round % 11); /* 0..10: below, at and above the 4 slots */
        for (uint32_t i = 0; i < puts; i++) {
            struct m x = {.seq = next_put, .pad = {next_put, ~next_put, 7}};
            next_put++;
            sl_chan_put(&c, &x);
            CHECK(c.posted);
        }
        c.posted = false;
        struct m y;
        uint32_t gets = (uint32_t)(round % 3) + 1;
        for (uint32_t i = 0; i < gets && sl_chan_get(&c, &y); i++) {
            CHECK_EQ(y.seq, next_get);
            CHECK_EQ(y.pad[1], ~next_get);
            next_get++;
        }
        uint32_t ovf = c.ovf_len;
        sl_chan_flush(&c);
        CHECK(c.posted == (c.ovf_len < ovf)); /* news only when something moved */
    }
    struct m y;
    while (next_get < next_put) {
        sl_chan_flush(&c);
        CHECK(sl_chan_get(&c, &y));
        CHECK_EQ(y.seq, next_get);
        next_get++;
    }
    CHECK(!sl_chan_get(&c, &y));
    CHECK_EQ(c.ovf_len, 0u);
    sl_chan_fini(&c);
    sl_chan_fini(&c); /* idempotent */
}

#define THREADED_N 200000u

static struct sl_chan tc;
static atomic_int producer_done;

static void *producer(void *arg)
{
    (void)arg;
    for (uint64_t i = 0; i < THREADED_N; i++) {
        struct m x = {.seq = i, .pad = {i * 3}};
        sl_chan_put(&tc, &x);
        if ((i & 63) == 0) {
            sl_chan_flush(&tc);
        }
    }
    while (tc.ovf_len > 0) {
        sl_chan_flush(&tc);
    }
    atomic_store(&producer_done, 1);
    return NULL;
}

TEST(two_threads_every_message_once_in_order)
{
    CHECK_EQ(sl_chan_init(&tc, 8, sizeof(struct m)), SL_OK);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, producer, NULL), 0);
    uint64_t next = 0;
    int bad = 0;
    for (;;) {
        struct m y;
        bool got = sl_chan_get(&tc, &y);
        if (!got && atomic_load(&producer_done)) {
            got = sl_chan_get(&tc, &y); /* (everything was in the ring before done) */
            if (!got) {
                break;
            }
        }
        if (got) {
            bad += y.seq != next || y.pad[0] != next * 3;
            next++;
        }
    }
    pthread_join(t, NULL);
    CHECK_EQ(bad, 0);
    CHECK_EQ(next, (uint64_t)THREADED_N);
    sl_chan_fini(&tc);
}

int main(void)
{
    RUN(order_through_wrap_and_overflow);
    RUN(two_threads_every_message_once_in_order);
    TEST_END();
}
