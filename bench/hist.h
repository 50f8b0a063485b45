/* hist.h - a log-linear latency histogram (HDR-like) for the benchmarks.
 *
 * Values (nanoseconds, or any u64) below 256 have a bucket each; above, every power of two
 * [2^e, 2^(e+1)) is split into 128 equal buckets, so a bucket is at most 1/128 (0.8%) of
 * its values wide and a percentile, reported at its bucket's midpoint, is within 0.4% of
 * the exact one. Fixed size (no allocation): embed it, zero it with bench_hist_reset.
 * Not thread-safe: one writer; merge per-thread histograms at the end.
 */
#ifndef SL_BENCH_HIST_H
#define SL_BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_SUB_BITS 7u                          /* 128 buckets per power of two */
#define BENCH_HIST_LINEAR   (2u << BENCH_HIST_SUB_BITS) /* values < 256: exact */
/* Powers 2^8 .. 2^63, 128 buckets each, after the linear part. */
#define BENCH_HIST_BUCKETS (BENCH_HIST_LINEAR + (64u - 8u) * (1u << BENCH_HIST_SUB_BITS))

struct bench_hist {
    uint64_t count;
    uint64_t min; /* exact; UINT64_MAX when empty */
    uint64_t max; /* exact */
    uint64_t buckets[BENCH_HIST_BUCKETS];
};

void bench_hist_reset(struct bench_hist *h);
void bench_hist_record(struct bench_hist *h, uint64_t v);
/* Adds every value of `src` (borrowed) to `dst`. */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);
/* The value at percentile `p` (0 < p <= 100): the smallest bucket holding at least
 * ceil(p/100 * count) values, reported at its midpoint clamped to [min, max]; p = 100
 * gives the exact max. 0 when empty. */
uint64_t bench_hist_percentile(const struct bench_hist *h, double p);

#endif
