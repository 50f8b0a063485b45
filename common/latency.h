/* latency.h - a fixed-bucket latency histogram, the shape Prometheus
 * exposes: bucket i counts observations <= SL_LATENCY_BASE_NS << i, the last
 * one everything (+Inf); with the count and the sum.
 *
 * 50 us << 18 = 13.1 s: from a page-cache append to a long stall in 19
 * buckets, each twice the last (the exposition's error is at most 2x, the
 * usual trade for a scrape-friendly histogram).
 *
 * Threading: one writer; a reader on the same thread.
 */
#ifndef SL_LATENCY_H
#define SL_LATENCY_H

#include <stdint.h>

#define SL_LATENCY_BASE_NS 50000ull
#define SL_LATENCY_BUCKETS 20u /* 19 bounded + Inf */

struct sl_latency {
    uint64_t bucket[SL_LATENCY_BUCKETS]; /* not cumulative */
    uint64_t count;
    uint64_t sum_ns;
};

void sl_latency_record(struct sl_latency *h, uint64_t ns);
/* The upper bound of bucket i in seconds (i < SL_LATENCY_BUCKETS - 1). */
double sl_latency_bound_s(uint32_t i);

#endif
