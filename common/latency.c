/* latency.c - the fixed-bucket latency histogram (see latency.h). */
#include "common/latency.h"

#include "common/assert.h"

void sl_latency_record(struct sl_latency *h, uint64_t ns)
{
    uint32_t i = 0;
    while (i < SL_LATENCY_BUCKETS - 1 && ns > (SL_LATENCY_BASE_NS << i)) {
        i++;
    }
    h->bucket[i]++;
    h->count++;
    h->sum_ns += ns;
}

double sl_latency_bound_s(uint32_t i)
{
    SL_ASSERT(i < SL_LATENCY_BUCKETS - 1);
    return (double)(SL_LATENCY_BASE_NS << i) / 1e9;
}
