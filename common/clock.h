/* clock.h - monotonic and wall clocks, and an injectable clock for tests.
 *
 * Code that makes decisions on wall time (retention, segment age, record
 * timestamps) takes a `struct sl_clock *` so tests can move time by hand.
 */
#ifndef SL_CLOCK_H
#define SL_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds, and in milliseconds (deadlines, timeouts). */
uint64_t sl_clock_mono_ns(void);
uint64_t sl_clock_mono_ms(void);
/* CLOCK_REALTIME in milliseconds since the Unix epoch. */
uint64_t sl_clock_wall_ms(void);

/* Sleeps `ms` milliseconds, resumed across signals. Blocks the thread: never on a loop. */
void sl_clock_sleep_ms(uint64_t ms);

struct sl_clock {
    /* Returns wall-clock milliseconds since the epoch. */
    uint64_t (*now_ms)(struct sl_clock *clock);
    uint64_t fake_ms; /* used by sl_clock_fake */
};

/* The real wall clock (a shared, immutable instance). */
extern struct sl_clock sl_clock_real;

/* Initialises a fake clock reading `start_ms` until changed with
 * sl_clock_fake_set / sl_clock_fake_advance. */
void sl_clock_fake_init(struct sl_clock *clock, uint64_t start_ms);
void sl_clock_fake_set(struct sl_clock *clock, uint64_t now_ms);
void sl_clock_fake_advance(struct sl_clock *clock, uint64_t delta_ms);

static inline uint64_t sl_clock_now_ms(struct sl_clock *clock)
{
    return clock->now_ms(clock);
}

#endif
