/* counters.h - what the engines count for the operators (/metrics): per
 * shard, records and bytes in and out; per operation, results by error code
 * and latency. Written by the engine module that does the work (produce.c,
 * fetch.c, consumer.c, queue.c), read by the front-ends; all on the main
 * loop. Counters only grow (Prometheus counters).
 */
#ifndef SL_COUNTERS_H
#define SL_COUNTERS_H

#include "common/error.h"
#include "common/latency.h"

#include <stdint.h>

struct sl_shard_io {
    uint64_t records_in;
    uint64_t bytes_in; /* batch bytes as stored */
    uint64_t records_out;
    uint64_t bytes_out; /* fetched batch bytes */
};

struct sl_op_stats {
    uint64_t results[SL_ERR_COUNT_]; /* by error code, SL_OK included */
    struct sl_latency latency;       /* from the request to its answer */
};

enum sl_engine_op {
    SL_OP_PRODUCE = 0,
    SL_OP_FETCH,
    SL_OP_COMMIT,
    SL_OP_RECEIVE,
    SL_OP_SETTLE,
    SL_OP_COUNT_
};

struct sl_engine_stats {
    struct sl_op_stats op[SL_OP_COUNT_];
};

static inline void sl_op_stats_record(struct sl_op_stats *s, int err, uint64_t ns)
{
    s->results[err >= 0 && err < SL_ERR_COUNT_ ? err : SL_ESYS]++;
    sl_latency_record(&s->latency, ns);
}

#endif
