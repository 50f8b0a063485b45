/* scale_bench.h - sluice-bench --mode scale (bench/scale_bench.c): what holding many
 * streams and shards costs one broker (issue #11). sluice_bench.c parses the options and
 * hands them over here. */
#ifndef SL_BENCH_SCALE_H
#define SL_BENCH_SCALE_H

#include <stdint.h>

struct scale_opts {
    uint32_t streams;      /* N */
    uint32_t shards;       /* S, shards per stream (1..1024) */
    uint32_t record_bytes; /* value bytes of the produce runs' records */
    uint32_t batch;        /* records per Produce in the produce runs */
    uint32_t inflight;     /* records in flight per producer; 0 = 64 batches */
    uint32_t producers;    /* threads (one connection each) of the fill and produce runs */
    uint32_t consumers;    /* threads (one connection each) of the read-back */
    int ack_durable;       /* 1: ACK_DURABLE, 0: ACK_WRITTEN */
    double warmup_s, duration_s;
    const char *dir;   /* parent of the broker's fresh directory */
    const char *flush; /* the broker's --flush */
    const char *const *extra;
    int extra_len;
    int cpu_server;     /* >= 0: pin the broker */
    const char *tls_ca; /* NULL: plaintext */
    int json;
};

/* Runs the whole scale benchmark with its own broker and prints the report. Returns the
 * exit status: 0 when every step ran without an error and the read-back matched, else 1. */
int scale_run(const struct scale_opts *o);

#endif
