/* clock.c - clock_gettime wrappers and the fake clock used by tests. */
#include "common/clock.h"

#include <errno.h>
#include <time.h>

uint64_t sl_clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t sl_clock_mono_ms(void)
{
    return sl_clock_mono_ns() / 1000000u;
}

uint64_t sl_clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t real_now_ms(struct sl_clock *clock)
{
    (void)clock;
    return sl_clock_wall_ms();
}

static uint64_t fake_now_ms(struct sl_clock *clock)
{
    return clock->fake_ms;
}

struct sl_clock sl_clock_real = {.now_ms = real_now_ms, .fake_ms = 0};

void sl_clock_fake_init(struct sl_clock *clock, uint64_t start_ms)
{
    clock->now_ms = fake_now_ms;
    clock->fake_ms = start_ms;
}

void sl_clock_fake_set(struct sl_clock *clock, uint64_t now_ms)
{
    clock->fake_ms = now_ms;
}

void sl_clock_fake_advance(struct sl_clock *clock, uint64_t delta_ms)
{
    clock->fake_ms += delta_ms;
}

void sl_clock_sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
