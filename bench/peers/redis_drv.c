/* redis_drv.c - Redis Streams driver for bench/peers/run.sh (hiredis).
 *
 *   redis_drv --port P --mode calib|produce|consume|tail|queue --record-bytes N --batch N
 *             [--tier T] [--duration S] [--warmup S] [--rate R] [--backlog N]
 *
 * calib:   PING <payload> pipelined, --batch commands per round trip (driver ceiling)
 * produce: XADD bench * d <payload> pipelined, --batch per round trip; p50/p99 = round trip
 * consume: --backlog records stored first (not timed), then XRANGE COUNT 1000 from the start
 * tail:    one thread XADDs at --rate, another XREAD BLOCK on `$`; p50/p99 = end to end
 * queue:   backlog, XGROUP CREATE, XREADGROUP COUNT --batch then one XACK of those ids
 * Prints one JSON line (drv_common.h). The stream `bench` is deleted at start.
 */
#include "drv_common.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <unistd.h>

static struct opts o;

static redisContext *conn(void)
{
    redisContext *c = redisConnect(o.host, o.port);
    if (c == NULL || c->err) {
        fprintf(stderr, "redis_drv: connect %s:%d: %s\n", o.host, o.port, c ? c->errstr : "oom");
        exit(1);
    }
    return c;
}

static redisReply *get(redisContext *c)
{
    void *r = NULL;
    if (redisGetReply(c, &r) != REDIS_OK || r == NULL) {
        fprintf(stderr, "redis_drv: %s\n", c->errstr);
        exit(1);
    }
    redisReply *rr = r;
    if (rr->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "redis_drv: error reply: %s\n", rr->str);
        exit(1);
    }
    return rr;
}

static void cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r == NULL) {
        fprintf(stderr, "redis_drv: %s\n", c->errstr);
        exit(1);
    }
    freeReplyObject(r);
}

/* Sends `n` commands (XADD or PING) and reads their replies. */
static void pipeline(redisContext *c, uint8_t *buf, uint32_t n, int ping)
{
    for (uint32_t i = 0; i < n; i++) {
        payload_stamp(buf);
        if (ping) {
            redisAppendCommand(c, "PING %b", buf, (size_t)o.bytes);
        } else {
            redisAppendCommand(c, "XADD bench * d %b", buf, (size_t)o.bytes);
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        freeReplyObject(get(c));
    }
}

struct produce_ctx {
    redisContext *c;
    uint8_t *buf;
    int ping;
};

static void produce_round(void *ctx)
{
    struct produce_ctx *p = ctx;
    pipeline(p->c, p->buf, o.batch, p->ping);
}

static void run_produce(int ping)
{
    struct produce_ctx p = {.c = conn(), .buf = calloc(1, o.bytes), .ping = ping};
    memset(p.buf + 8, 'x', o.bytes - 8);
    produce_loop(&o, ping, produce_round, &p);
    free(p.buf);
}

static void fill_backlog(redisContext *c)
{
    uint8_t *buf = calloc(1, o.bytes);
    memset(buf + 8, 'x', o.bytes - 8);
    for (uint64_t done = 0; done < o.backlog; done += 1000) {
        pipeline(c, buf, 1000, 0);
    }
    free(buf);
}

static void run_consume(void)
{
    redisContext *c = conn();
    fill_backlog(c);
    char last[64] = "-";
    uint64_t recs = 0, t0 = now_ns(), te = t0 + (uint64_t)(o.duration * 1e9);
    while (recs < o.backlog && now_ns() < te) {
        redisReply *r = redisCommand(c, "XRANGE bench %s + COUNT 1000", last);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
            break;
        }
        redisReply *e = r->element[r->elements - 1];
        snprintf(last, sizeof(last), "(%s", e->element[0]->str);
        recs += r->elements;
        freeReplyObject(r);
    }
    emit(&o, "consume", recs, (double)(now_ns() - t0) / 1e9, -1, -1);
}

static volatile int tail_stop;

static void *tail_producer(void *arg)
{
    (void)arg;
    redisContext *c = conn();
    uint8_t *buf = calloc(1, o.bytes);
    memset(buf + 8, 'x', o.bytes - 8);
    uint64_t gap = 1000000000ull / (o.rate ? o.rate : 1), next = now_ns();
    while (!tail_stop) {
        uint64_t t = now_ns();
        if (t < next) {
            struct timespec ts = {0, (long)(next - t)};
            nanosleep(&ts, NULL);
        }
        next += gap;
        pipeline(c, buf, 1, 0);
    }
    redisFree(c);
    return NULL;
}

static void run_tail(void)
{
    redisContext *c = conn();
    struct lat l;
    lat_init(&l, 1u << 22);
    pthread_t th;
    pthread_create(&th, NULL, tail_producer, NULL);
    char last[64] = "$";
    uint64_t t0 = now_ns(), tw = t0 + (uint64_t)(o.warmup * 1e9), te = tw + (uint64_t)(o.duration * 1e9);
    uint64_t recs = 0;
    while (now_ns() < te) {
        redisReply *r = redisCommand(c, "XREAD COUNT 1000 BLOCK 500 STREAMS bench %s", last);
        if (r == NULL) {
            fprintf(stderr, "redis_drv: %s\n", c->errstr);
            exit(1);
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
            redisReply *ents = r->element[0]->element[1];
            uint64_t t = now_ns();
            for (size_t i = 0; i < ents->elements; i++) {
                redisReply *fv = ents->element[i]->element[1];
                if (t >= tw && fv->elements >= 2 && fv->element[1]->len >= 8) {
                    lat_add(&l, t - payload_time(fv->element[1]->str));
                    recs++;
                }
            }
            snprintf(last, sizeof(last), "%s", ents->element[ents->elements - 1]->element[0]->str);
        }
        freeReplyObject(r);
    }
    tail_stop = 1;
    pthread_join(th, NULL);
    emit(&o, "tail", recs, o.duration, lat_pct(&l, 50), lat_pct(&l, 99));
}

static void run_queue(void)
{
    redisContext *c = conn();
    fill_backlog(c);
    cmd(c, "XGROUP CREATE bench g 0");
    struct lat l;
    lat_init(&l, 1u << 22);
    uint64_t recs = 0, t0 = now_ns(), te = t0 + (uint64_t)(o.duration * 1e9);
    const char **argv = malloc((3 + o.batch) * sizeof(char *));
    size_t *lens = malloc((3 + o.batch) * sizeof(size_t));
    while (recs < o.backlog && now_ns() < te) {
        uint64_t t = now_ns();
        redisReply *r = redisCommand(c, "XREADGROUP GROUP g c1 COUNT %u STREAMS bench >", o.batch);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
            break;
        }
        redisReply *ents = r->element[0]->element[1];
        if (ents->elements == 0) {
            freeReplyObject(r);
            break;
        }
        argv[0] = "XACK";
        argv[1] = "bench";
        argv[2] = "g";
        for (size_t i = 0; i < ents->elements; i++) {
            argv[3 + i] = ents->element[i]->element[0]->str;
            lens[3 + i] = ents->element[i]->element[0]->len;
        }
        lens[0] = 4;
        lens[1] = 5;
        lens[2] = 1;
        redisReply *a = redisCommandArgv(c, (int)(3 + ents->elements), argv, lens);
        if (a == NULL || a->type != REDIS_REPLY_INTEGER || (size_t)a->integer != ents->elements) {
            fprintf(stderr, "redis_drv: XACK failed\n");
            exit(1);
        }
        freeReplyObject(a);
        recs += ents->elements;
        lat_add(&l, now_ns() - t);
        freeReplyObject(r);
    }
    emit(&o, "queue", recs, (double)(now_ns() - t0) / 1e9, lat_pct(&l, 50), lat_pct(&l, 99));
}

int main(int argc, char **argv)
{
    opts_parse(&o, argc, argv);
    redisContext *c = conn();
    cmd(c, "DEL bench");
    redisFree(c);
    if (strcmp(o.mode, "calib") == 0) {
        run_produce(1);
    } else if (strcmp(o.mode, "produce") == 0) {
        run_produce(0);
    } else if (strcmp(o.mode, "consume") == 0) {
        run_consume();
    } else if (strcmp(o.mode, "tail") == 0) {
        run_tail();
    } else if (strcmp(o.mode, "queue") == 0) {
        run_queue();
    } else {
        fprintf(stderr, "redis_drv: unknown mode %s\n", o.mode);
        return 2;
    }
    c = conn();
    cmd(c, "DEL bench");
    redisFree(c);
    return 0;
}
