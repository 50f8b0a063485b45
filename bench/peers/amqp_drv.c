/* amqp_drv.c - RabbitMQ driver for bench/peers/run.sh (rabbitmq-c / librabbitmq 0.11, AMQP 0.9.1).
 *
 *   amqp_drv --port P --mode calib|produce|consume|tail|queue --queue-type quorum|stream
 *            --record-bytes N --batch N [--tier T] [--duration S] [--warmup S] [--rate R]
 *            [--backlog N]
 *
 * Every publisher channel is in confirm mode (confirm.select); messages are persistent
 * (delivery_mode 2) to a durable queue `bench` of the given x-queue-type, recreated at start.
 * calib:   publish to the default exchange with a routing key no queue has (unroutable: the
 *          broker confirms without storing) - the driver's and protocol's ceiling
 * produce: publish --batch messages, then wait for all their confirms; p50/p99 = that wait
 * consume: --backlog messages first (not timed), then basic.consume (stream: x-stream-offset
 *          first) with prefetch 1000, manual acks `multiple` every 500 messages
 * tail:    one thread publishes at --rate (confirm each), another consumes (stream: offset
 *          next); p50/p99 = end to end
 * queue:   backlog, then basic.consume with prefetch --batch and one basic.ack per message
 */
#include "drv_common.h"

#include <pthread.h>
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <sys/time.h>

static struct opts o;

static void check_rpc(amqp_connection_state_t c, const char *what)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "amqp_drv: %s failed (reply type %d, library error %s)\n", what,
                (int)r.reply_type, amqp_error_string2(r.library_error));
        if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
            r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            fprintf(stderr, "amqp_drv: channel closed: %.*s\n", (int)m->reply_text.len,
                    (char *)m->reply_text.bytes);
        }
        exit(1);
    }
}

static amqp_connection_state_t conn(int confirm)
{
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    if (s == NULL || amqp_socket_open(s, o.host, o.port) != AMQP_STATUS_OK) {
        fprintf(stderr, "amqp_drv: connect %s:%d failed\n", o.host, o.port);
        exit(1);
    }
    amqp_rpc_reply_t r = amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest");
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "amqp_drv: login failed\n");
        exit(1);
    }
    amqp_channel_open(c, 1);
    check_rpc(c, "channel.open");
    if (confirm) {
        amqp_confirm_select(c, 1);
        check_rpc(c, "confirm.select");
    }
    return c;
}

static void declare(amqp_connection_state_t c)
{
    amqp_queue_delete(c, 1, amqp_cstring_bytes("bench"), 0, 0);
    check_rpc(c, "queue.delete");
    amqp_table_entry_t e[1];
    e[0].key = amqp_cstring_bytes("x-queue-type");
    e[0].value.kind = AMQP_FIELD_KIND_UTF8;
    e[0].value.value.bytes = amqp_cstring_bytes(o.qtype);
    amqp_table_t args = {.num_entries = 1, .entries = e};
    amqp_queue_declare(c, 1, amqp_cstring_bytes("bench"), 0, 1, 0, 0, args);
    check_rpc(c, "queue.declare");
}

struct pub {
    amqp_connection_state_t c;
    uint64_t published, confirmed;
    uint8_t *buf;
    const char *rkey;
};

static void pub_init(struct pub *p, amqp_connection_state_t c, const char *rkey)
{
    p->c = c;
    p->published = p->confirmed = 0;
    p->buf = calloc(1, o.bytes);
    memset(p->buf + 8, 'x', o.bytes - 8);
    p->rkey = rkey;
}

static void pub_send(struct pub *p, uint32_t n)
{
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG, .delivery_mode = 2};
    for (uint32_t i = 0; i < n; i++) {
        payload_stamp(p->buf);
        amqp_bytes_t body = {.len = o.bytes, .bytes = p->buf};
        if (amqp_basic_publish(p->c, 1, amqp_cstring_bytes(""), amqp_cstring_bytes(p->rkey), 0, 0,
                               &props, body) != AMQP_STATUS_OK) {
            fprintf(stderr, "amqp_drv: publish failed\n");
            exit(1);
        }
        p->published++;
    }
}

/* Waits until every published message is confirmed (basic.ack, `multiple` honoured). */
static void pub_wait(struct pub *p)
{
    while (p->confirmed < p->published) {
        amqp_frame_t f;
        if (amqp_simple_wait_frame(p->c, &f) != AMQP_STATUS_OK) {
            fprintf(stderr, "amqp_drv: wait for confirm failed\n");
            exit(1);
        }
        if (f.frame_type != AMQP_FRAME_METHOD) {
            continue;
        }
        if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *a = f.payload.method.decoded;
            p->confirmed = a->multiple ? a->delivery_tag : p->confirmed + 1;
        } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            fprintf(stderr, "amqp_drv: publish nacked\n");
            exit(1);
        } else if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = f.payload.method.decoded;
            fprintf(stderr, "amqp_drv: channel closed: %.*s\n", (int)m->reply_text.len,
                    (char *)m->reply_text.bytes);
            exit(1);
        }
        amqp_maybe_release_buffers(p->c);
    }
}

static void pub_round(void *ctx)
{
    struct pub *p = ctx;
    pub_send(p, o.batch);
    pub_wait(p);
}

static void run_produce(int calib)
{
    amqp_connection_state_t c = conn(1);
    if (!calib) {
        declare(c);
    }
    struct pub p;
    pub_init(&p, c, calib ? "no-such-queue-sluice-bench" : "bench");
    produce_loop(&o, calib, pub_round, &p);
    if (!calib) {
        amqp_queue_delete(c, 1, amqp_cstring_bytes("bench"), 0, 0);
    }
}

static void fill_backlog(amqp_connection_state_t c)
{
    struct pub p;
    pub_init(&p, c, "bench");
    for (uint64_t done = 0; done < o.backlog; done += 1000) {
        pub_send(&p, 1000);
        pub_wait(&p);
    }
}

static void start_consume(amqp_connection_state_t c, uint16_t prefetch, const char *offset)
{
    amqp_basic_qos(c, 1, 0, prefetch, 0);
    check_rpc(c, "basic.qos");
    amqp_table_entry_t e[1];
    amqp_table_t args = {.num_entries = 0, .entries = e};
    if (strcmp(o.qtype, "stream") == 0) {
        e[0].key = amqp_cstring_bytes("x-stream-offset");
        e[0].value.kind = AMQP_FIELD_KIND_UTF8;
        e[0].value.value.bytes = amqp_cstring_bytes(offset);
        args.num_entries = 1;
    }
    amqp_basic_consume(c, 1, amqp_cstring_bytes("bench"), amqp_empty_bytes, 0, 0, 0, args);
    check_rpc(c, "basic.consume");
}

/* Next delivery, or 0 on timeout. */
static int next_msg(amqp_connection_state_t c, amqp_envelope_t *env, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    amqp_maybe_release_buffers(c);
    amqp_rpc_reply_t r = amqp_consume_message(c, env, &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        return 1;
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) {
        return 0;
    }
    fprintf(stderr, "amqp_drv: consume failed (%d, %s)\n", (int)r.reply_type,
            amqp_error_string2(r.library_error));
    exit(1);
}

static void run_consume(int per_message_ack)
{
    amqp_connection_state_t c = conn(1);
    declare(c);
    fill_backlog(c);
    amqp_connection_state_t cc = conn(0);
    uint16_t prefetch = per_message_ack ? (uint16_t)o.batch : 1000;
    start_consume(cc, prefetch, "first");
    struct lat l;
    lat_init(&l, 1u << 22);
    uint64_t recs = 0, t0 = now_ns(), te = t0 + (uint64_t)(o.duration * 1e9);
    while (recs < o.backlog && now_ns() < te) {
        amqp_envelope_t env;
        if (!next_msg(cc, &env, 1000)) {
            break;
        }
        recs++;
        if (per_message_ack) {
            amqp_basic_ack(cc, 1, env.delivery_tag, 0);
        } else if (recs % 500 == 0) {
            amqp_basic_ack(cc, 1, env.delivery_tag, 1);
        }
        amqp_destroy_envelope(&env);
    }
    emit(&o, per_message_ack ? "queue" : "consume", recs, (double)(now_ns() - t0) / 1e9, -1, -1);
    amqp_queue_delete(c, 1, amqp_cstring_bytes("bench"), 0, 0);
}

static volatile int tail_stop;

static void *tail_producer(void *arg)
{
    struct pub p;
    pub_init(&p, arg, "bench");
    uint64_t gap = 1000000000ull / (o.rate ? o.rate : 1), next = now_ns();
    while (!tail_stop) {
        uint64_t t = now_ns();
        if (t < next) {
            struct timespec ts = {0, (long)(next - t)};
            nanosleep(&ts, NULL);
        }
        next += gap;
        pub_send(&p, 1);
        pub_wait(&p);
    }
    return NULL;
}

static void run_tail(void)
{
    amqp_connection_state_t c = conn(1);
    declare(c);
    amqp_connection_state_t cc = conn(0);
    start_consume(cc, 1000, "next");
    struct lat l;
    lat_init(&l, 1u << 22);
    pthread_t th;
    pthread_create(&th, NULL, tail_producer, c);
    uint64_t t0 = now_ns(), tw = t0 + (uint64_t)(o.warmup * 1e9), te = tw + (uint64_t)(o.duration * 1e9);
    uint64_t recs = 0;
    while (now_ns() < te) {
        amqp_envelope_t env;
        if (!next_msg(cc, &env, 200)) {
            continue;
        }
        uint64_t t = now_ns();
        if (t >= tw && env.message.body.len >= 8) {
            lat_add(&l, t - payload_time(env.message.body.bytes));
            recs++;
        }
        amqp_basic_ack(cc, 1, env.delivery_tag, 0);
        amqp_destroy_envelope(&env);
    }
    tail_stop = 1;
    pthread_join(th, NULL);
    emit(&o, "tail", recs, o.duration, lat_pct(&l, 50), lat_pct(&l, 99));
    amqp_queue_delete(c, 1, amqp_cstring_bytes("bench"), 0, 0);
}

int main(int argc, char **argv)
{
    opts_parse(&o, argc, argv);
    if (strcmp(o.mode, "calib") == 0) {
        run_produce(1);
    } else if (strcmp(o.mode, "produce") == 0) {
        run_produce(0);
    } else if (strcmp(o.mode, "consume") == 0) {
        run_consume(0);
    } else if (strcmp(o.mode, "queue") == 0) {
        run_consume(1);
    } else if (strcmp(o.mode, "tail") == 0) {
        run_tail();
    } else {
        fprintf(stderr, "amqp_drv: unknown mode %s\n", o.mode);
        return 2;
    }
    return 0;
}
