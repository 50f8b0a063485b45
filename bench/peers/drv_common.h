/* drv_common.h - shared bits of the peer-broker drivers (redis_drv.c, amqp_drv.c):
 * options, clock, latency samples, the common JSON result line. Header-only. */
#ifndef SLUICE_PEERS_DRV_COMMON_H
#define SLUICE_PEERS_DRV_COMMON_H

#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct opts {
    const char *host;
    int port;
    const char *mode;   /* calib | produce | consume | tail | queue */
    const char *system; /* name printed in "system" */
    const char *tier;   /* fsync | write | calib */
    const char *qtype;  /* amqp: quorum | stream */
    uint32_t bytes;     /* record payload bytes */
    uint32_t batch;     /* records per pipeline / in flight */
    double warmup;      /* seconds not measured */
    double duration;    /* seconds measured */
    uint32_t rate;      /* tail: records/s produced */
    uint64_t backlog;   /* consume/queue: records stored before reading */
};

static inline void opts_parse(struct opts *o, int argc, char **argv)
{
    *o = (struct opts){.host = "127.0.0.1", .port = 0, .mode = "produce", .system = "?",
                       .tier = "?", .qtype = "quorum", .bytes = 1024, .batch = 1,
                       .warmup = 0.5, .duration = 3, .rate = 1000, .backlog = 200000};
    static const struct option lo[] = {
        {"host", 1, 0, 'h'},     {"port", 1, 0, 'p'},         {"mode", 1, 0, 'm'},
        {"system", 1, 0, 's'},   {"tier", 1, 0, 't'},         {"queue-type", 1, 0, 'q'},
        {"record-bytes", 1, 0, 'b'}, {"batch", 1, 0, 'B'},    {"warmup", 1, 0, 'w'},
        {"duration", 1, 0, 'd'}, {"rate", 1, 0, 'r'},         {"backlog", 1, 0, 'l'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'h': o->host = optarg; break;
        case 'p': o->port = atoi(optarg); break;
        case 'm': o->mode = optarg; break;
        case 's': o->system = optarg; break;
        case 't': o->tier = optarg; break;
        case 'q': o->qtype = optarg; break;
        case 'b': o->bytes = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'B': o->batch = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'w': o->warmup = atof(optarg); break;
        case 'd': o->duration = atof(optarg); break;
        case 'r': o->rate = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'l': o->backlog = strtoull(optarg, NULL, 10); break;
        default: fprintf(stderr, "bad option\n"); exit(2);
        }
    }
    if (o->bytes < 16) {
        o->bytes = 16;
    }
    if (o->batch < 1) {
        o->batch = 1;
    }
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Latency samples in ns; keeps the first `cap` (enough for a few seconds). */
struct lat {
    uint64_t *v;
    size_t n, cap;
};

static inline void lat_init(struct lat *l, size_t cap)
{
    l->v = malloc(cap * sizeof(uint64_t));
    l->n = 0;
    l->cap = cap;
}

static inline void lat_add(struct lat *l, uint64_t ns)
{
    if (l->n < l->cap) {
        l->v[l->n++] = ns;
    }
}

static int lat_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Percentile in µs, or -1 when there are no samples. */
static inline double lat_pct(struct lat *l, double p)
{
    if (l->n == 0) {
        return -1;
    }
    qsort(l->v, l->n, sizeof(uint64_t), lat_cmp);
    size_t i = (size_t)(p / 100.0 * (double)(l->n - 1) + 0.5);
    return (double)l->v[i] / 1000.0;
}

static inline void fmt_num(char *buf, size_t n, double v)
{
    if (v < 0) {
        snprintf(buf, n, "null");
    } else {
        snprintf(buf, n, "%.1f", v);
    }
}

/* One result line: MB = 10^6 bytes of record payload. */
static inline void emit(const struct opts *o, const char *workload, uint64_t records, double secs,
                        double p50_us, double p99_us)
{
    char a[32], b[32];
    double rps = secs > 0 ? (double)records / secs : 0;
    fmt_num(a, sizeof(a), p50_us);
    fmt_num(b, sizeof(b), p99_us);
    printf("{\"system\":\"%s\",\"tier\":\"%s\",\"workload\":\"%s\",\"record_bytes\":%u,"
           "\"batch\":%u,\"records_per_s\":%.1f,\"mb_per_s\":%.2f,\"p50_us\":%s,\"p99_us\":%s}\n",
           o->system, o->tier, workload, o->bytes, o->batch, rps, rps * o->bytes / 1e6, a, b);
    fflush(stdout);
}

/* The closed-loop produce cell of every driver: round(ctx) sends o->batch records and
 * waits for all their acknowledgements; after the warm-up, each round is one latency
 * sample (first send to last ack). Prints the result line. */
static inline void produce_loop(const struct opts *o, int calib, void (*round)(void *ctx),
                                void *ctx)
{
    struct lat l;
    lat_init(&l, 1u << 22);
    uint64_t t0 = now_ns(), tw = t0 + (uint64_t)(o->warmup * 1e9);
    uint64_t te = tw + (uint64_t)(o->duration * 1e9);
    uint64_t recs = 0, tstart = 0, t;
    while ((t = now_ns()) < te) {
        round(ctx);
        uint64_t t2 = now_ns();
        if (t >= tw) {
            if (tstart == 0) {
                tstart = t;
            }
            recs += o->batch;
            lat_add(&l, t2 - t);
        }
    }
    double secs = (double)(now_ns() - tstart) / 1e9;
    emit(o, calib ? "calib-produce" : "produce", recs, secs, lat_pct(&l, 50), lat_pct(&l, 99));
    free(l.v);
}

/* Payload: first 8 bytes = send time (CLOCK_MONOTONIC ns) for end-to-end latency. */
static inline void payload_stamp(uint8_t *p)
{
    uint64_t t = now_ns();
    memcpy(p, &t, 8);
}

static inline uint64_t payload_time(const void *p)
{
    uint64_t t;
    memcpy(&t, p, 8);
    return t;
}

#endif
