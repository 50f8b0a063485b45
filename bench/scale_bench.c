/* scale_bench.c - sluice-bench --mode scale: what holding many streams and shards costs one
 * broker (issue #11), measured in one run against a sluiced of its own (bench_broker):
 *
 *  1. create   N streams of S shards as fast as the broker takes them: 8 threads over 4
 *              connections call sluice_stream_create concurrently (a create is durable
 *              when answered); streams/s and shards/s. The first failure stops the creates
 *              and is reported with the stream it failed at; later steps use the streams
 *              that exist.
 *  2. idle     one small record (no key, durable) to every shard so that each has data;
 *              then, after 2 s of quiet, the broker's VmRSS (/proc/PID/status), RSS per
 *              shard over the broker before the creates, its open descriptors
 *              (/proc/PID/fd), RLIMIT_NOFILE (/proc/PID/limits) and the CPU it used in
 *              those 2 s (/proc/PID/stat: the per-tick work over every shard).
 *  3. restart  SIGTERM and wait (the clean stop's time), start it again on the same
 *              directory and port, and time until it answers a Hello ("port") and until
 *              a record produced durably to a random shard has been read back ("ready"),
 *              then until the broker logs that every stream found at start-up has its
 *              shards open (loaded in the background; the broker runs at log level info
 *              for this); then the same after SIGKILL. RSS and descriptors 1 s after each.
 *  4. produce  --producers threads, each with its own connection and at most --inflight
 *              records unacknowledged, send Produce requests of --batch records of
 *              --record-bytes to a random shard among all N x S for --warmup + --duration
 *              seconds, then the same over one stream of 4 shards: records/s acknowledged
 *              in the measured period, their ratio, batch ack latency.
 *     consume  --consumers threads read every shard of the N streams back from the oldest
 *              record (a sluice_consumer over 32 shards at a time) and compare the count
 *              with what was acknowledged (step 2, the probes, the produce run).
 *
 * The produce runs use libsluice's pipelined connection (client/conn.h) rather than
 * sluice_producer: a producer is bound to one stream and has its own thread, so N streams
 * would take N producers per thread. Every batch goes to one shard and its records carry
 * random keys that hash into that shard (8 per shard number, drawn at start), so the
 * broker's routing check runs; both runs send the same requests and differ only in how
 * many shards they spread over. (A producer batching per shard with a linger makes
 * smaller batches over many shards; --batch 1 shows that end.)
 *
 * The benchmark's own memory and descriptors stay bounded whatever N: at most 8
 * connections at a time, stream names computed from their number, one byte per stream,
 * a buffer per request in flight. The broker's stderr goes to <dir>/sluice-bench-scale-
 * <pid>.log, removed at the end unless a step failed.
 */
#include "bench/scale_bench.h"

#include "bench/bench_broker.h"
#include "bench/hist.h"
#include "client/conn.h"
#include "client/sluice.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/partition.h"
#include "storage/batch.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROG                     "sluice-bench"
#define CREATE_THREADS           8u
#define CREATE_CONNS             4u
#define FILL_INFLIGHT            64u /* one-record produces in flight per connection */
#define FILL_VALUE               "sluice-bench scale: first record"
#define KEYS_PER_SHARD           8u
#define KEY_BYTES                16u
#define VALUE_POOL_BYTES         (1u << 20)
#define INFLIGHT_BATCHES_DEFAULT 64u
#define BATCH_BYTES_MAX          (8u << 20) /* the broker's default batch_bytes_max */
#define CONSUME_CHUNK            32u        /* shards one consumer reads at a time */
#define CONSUME_FETCH_BYTES      (1u << 20)
#define CONSUME_POLL_MAX         1024u
#define CONSUME_POLL_MS          0u /* catch-up only: a tail long-poll ends at a 50 ms tick */
#define CONSUME_STALL_NS         (60ull * 1000000000u)
#define SETTLE_NS                1000000000ull
#define IDLE_NS                  2000000000ull /* the quiet period after step 2 */
#define READY_TIMEOUT_NS         (600ull * 1000000000u)
#define PROBE_READ_NS            (10ull * 1000000000u)
#define WATCH_NS                 50000000ull
#define ERR_MAX                  600
#define FOUR_SHARDS              4u
#define FOUR_STREAM              "scale-four"
#define NAME_MAX_LEN             32

/* ---- results ---- */

struct sample {
    long rss_kib; /* -1: unknown */
    long fds;
};

struct restart_res {
    int ran;
    double stop_s;  /* signal to exit */
    double port_s;  /* start to the first answered Hello; < 0 when never */
    double ready_s; /* start to a record written and read back; < 0 when never */
    double loaded_s; /* start to "all N streams loaded" in the log; < 0 when never */
    struct sample after;
    char err[ERR_MAX];
};

struct prun {
    int ran;
    uint32_t shards;
    double seconds;
    uint64_t window, acked_total, failed;
    struct bench_hist ack;
    char err[ERR_MAX];
};

static struct scale_res {
    long nofile_soft, nofile_hard; /* -1: unknown or unlimited */
    struct sample empty, created, idle;
    double idle_cpu_pct; /* the broker's CPU while idle (after step 2), % of one core */
    char four_err[ERR_MAX];
    /* 1. */
    uint32_t created_streams;
    double create_s;
    int64_t create_failed_at; /* the lowest stream number whose create failed, -1: none */
    uint32_t create_failures; /* creates that failed (in flight when the first failed) */
    char create_err[ERR_MAX];
    /* 2. */
    uint64_t fill_ok, fill_failed;
    double fill_s;
    char fill_err[ERR_MAX];
    /* 3. */
    struct restart_res clean, kill9;
    uint64_t probes_many; /* probe records on the N streams */
    /* 4. */
    struct prun many, four;
    int consume_ran;
    uint64_t consumed, expected, uncertain;
    double consume_s;
    char consume_err[ERR_MAX];
} res;

/* ---- state ---- */

static const struct scale_opts *O;
static struct bench_broker bb;
static struct bench_broker_opts bo;
static char log_path[300];
static int last_status = -1; /* the broker's wait status once it exited */
static pthread_mutex_t err_mu = PTHREAD_MUTEX_INITIALIZER;
static uint32_t *live; /* numbers of the streams that exist */
static uint32_t n_live;
static uint8_t *made; /* per stream: created */
static atomic_int abort_step;
static uint64_t t_meas, t_end; /* a produce run's measured period (CLOCK_MONOTONIC ns) */

struct keypool {
    uint32_t shards;
    char *keys; /* shards x KEYS_PER_SHARD keys of KEY_BYTES, each hashing to its shard */
};
static struct keypool kp_many, kp_four;

static void stream_name(char *buf, size_t cap, uint32_t i)
{
    snprintf(buf, cap, "scale-%07u", i);
}

__attribute__((format(printf, 2, 3))) static void set_err(char *dst, const char *fmt, ...)
{
    pthread_mutex_lock(&err_mu);
    if (dst[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(dst, ERR_MAX, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&err_mu);
}

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17; /* xorshift64 */
    return *x;
}

static double secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

/* ---- the broker's process ---- */

static long limit_value(const char *s)
{
    return strncmp(s, "unlimited", 9) == 0 ? -1 : strtol(s, NULL, 10);
}

static void proc_nofile(pid_t pid, long *soft, long *hard)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
    FILE *f = fopen(path, "r");
    *soft = *hard = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "Max open files", 14) == 0) {
            char a[32], b[32];
            if (sscanf(line + 14, " %31s %31s", a, b) == 2) {
                *soft = limit_value(a);
                *hard = limit_value(b);
            }
        }
    }
    if (f != NULL) {
        fclose(f);
    }
}

/* utime + stime of the process in clock ticks; -1 when unknown. */
static long proc_cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    /* after "pid (comm) ": state ... utime stime are fields 14 and 15 */
    const char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) {
        return -1;
    }
    return (long)(ut + st);
}

static void sample_now(struct sample *s)
{
    s->rss_kib = bb.pid > 0 ? bench_proc_rss_kib(bb.pid) : -1;
    s->fds = bb.pid > 0 ? bench_proc_fds(bb.pid) : -1;
}

/* How many times the broker's log says every stream found at start-up was
 * loaded (the catalog's "all N streams loaded" line, at log level info). */
static int log_loaded_lines(void)
{
    FILE *f = fopen(log_path, "r");
    if (f == NULL) {
        return 0;
    }
    int n = 0;
    char line[512];
    while (fgets(line, sizeof(line), f) != NULL) {
        n += strstr(line, "streams loaded, ") != NULL;
    }
    fclose(f);
    return n;
}

/* The last line of the broker's log (at most `cap` - 1 bytes). */
static void log_tail(char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen(log_path, "r");
    if (f == NULL) {
        return;
    }
    char buf[4096];
    if (fseek(f, -(long)(sizeof(buf) - 1), SEEK_END) != 0) {
        rewind(f);
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }
    buf[n] = '\0';
    const char *last = strrchr(buf, '\n');
    last = last != NULL ? last + 1 : buf;
    size_t len = strlen(last) < cap - 1 ? strlen(last) : cap - 1;
    memcpy(out, last, len);
    out[len] = '\0';
}

static void status_text(int st, char *out, size_t cap)
{
    if (st < 0) {
        snprintf(out, cap, "status unknown");
    } else if (WIFEXITED(st)) {
        snprintf(out, cap, "exit %d", WEXITSTATUS(st));
    } else if (WIFSIGNALED(st)) {
        snprintf(out, cap, "signal %d", WTERMSIG(st));
    } else {
        snprintf(out, cap, "status 0x%x", (unsigned)st);
    }
}

/* 1 while the broker runs. Main thread only (it reaps). */
static int broker_up(void)
{
    int st = -1;
    if (bench_broker_running(&bb, &st)) {
        return 1;
    }
    if (st != -1) {
        last_status = st;
    }
    return 0;
}

/* The size of the broker's log now: where a step's messages start. */
static long log_mark(void)
{
    FILE *f = fopen(log_path, "r");
    long n = 0;
    if (f != NULL && fseek(f, 0, SEEK_END) == 0) {
        n = ftell(f);
    }
    if (f != NULL) {
        fclose(f);
    }
    return n < 0 ? 0 : n;
}

/* When the step that began at log offset `mark` failed (`err` set), appends the first
 * ERROR line the broker logged since: the client often only hears "system error". */
static void log_annotate(char *err, long mark)
{
    if (err[0] == '\0') {
        return;
    }
    FILE *f = fopen(log_path, "r");
    char line[512];
    if (f == NULL || fseek(f, mark, SEEK_SET) != 0) {
        if (f != NULL) {
            fclose(f);
        }
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *e = strstr(line, " ERROR ");
        if (e != NULL) {
            line[strcspn(line, "\n")] = '\0';
            size_t len = strlen(err);
            snprintf(err + len, ERR_MAX - len, "; broker log: %s", e + 7);
            break;
        }
    }
    fclose(f);
}

/* Says in `err` that the broker is gone, with its exit and the last line of its log. */
static void broker_gone(char *err)
{
    char st[64], tail[200];
    status_text(last_status, st, sizeof(st));
    log_tail(tail, sizeof(tail));
    set_err(err, "the broker exited (%s); last log line: %s", st, tail[0] ? tail : "(none)");
}

/* Waits until `*done` reaches `n`, watching the broker: if it dies, says so in `err` and
 * asks the workers to stop (abort_step). */
static void watch(atomic_uint *done, uint32_t n, char *err)
{
    while (atomic_load(done) < n) {
        bench_sleep_ns(WATCH_NS);
        if (!atomic_load(&abort_step) && !broker_up()) {
            broker_gone(err);
            atomic_store(&abort_step, 1);
        }
    }
}

static int connect_client(sluice_client **c, char *err)
{
    struct sluice_client_opts co = {.tls_ca_file = O->tls_ca};
    int rc = sluice_client_new(bb.addr, &co, c);
    if (rc != SL_OK) {
        set_err(err, "connect: %s (%s)", sl_errname(rc), sluice_last_error());
    }
    return rc;
}

/* ---- keys that hash into a given shard ---- */

static int keypool_init(struct keypool *kp, uint32_t shards, uint64_t seed)
{
    static const char hex[] = "0123456789abcdef";
    kp->shards = shards;
    kp->keys = malloc((size_t)shards * KEYS_PER_SHARD * KEY_BYTES);
    uint32_t *have = calloc(shards, sizeof(*have));
    if (kp->keys == NULL || have == NULL) {
        free(have);
        return SL_ENOMEM;
    }
    uint64_t x = seed | 1, missing = (uint64_t)shards * KEYS_PER_SHARD;
    char key[KEY_BYTES];
    while (missing > 0) {
        uint64_t r = rng_next(&x);
        for (uint32_t i = 0; i < KEY_BYTES; i++) {
            key[i] = hex[(r >> (4 * i)) & 15u];
        }
        uint32_t s = sl_partition_shard(sl_partition_hash(key, KEY_BYTES), shards);
        if (have[s] < KEYS_PER_SHARD) {
            memcpy(kp->keys + ((size_t)s * KEYS_PER_SHARD + have[s]) * KEY_BYTES, key, KEY_BYTES);
            have[s]++;
            missing--;
        }
    }
    free(have);
    return SL_OK;
}

/* ---- producing: a thread with its connection and a bounded set of requests ---- */

struct pworker;

struct pslot {
    struct pworker *w;
    uint8_t *buf;
    size_t cap;
    uint32_t records;
    uint64_t sent_ns;
};

enum pjob { JOB_FILL, JOB_MANY, JOB_FOUR };

struct pworker {
    pthread_t th;
    int started;
    enum pjob job;
    sluice_client *c;
    char *err; /* the step's error text */
    uint64_t rng;
    uint8_t *pool;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pslot *slots;
    struct pslot **free_slots;
    uint32_t nslots, nfree;
    /* under mu */
    uint64_t acked_total, acked_window, failed;
    struct bench_hist ack;
};

static atomic_uint workers_done;
static atomic_uint_fast64_t fill_next;

/* A Produce's answer (the client's I/O thread), or a send that failed at once. */
static void on_produced(void *ctx, int err, const char *msg, sl_response *resp)
{
    struct pslot *s = ctx;
    struct pworker *w = s->w;
    uint64_t now = bench_now_ns();
    if (err == SL_OK && (resp == NULL || resp->body_case != SLUICE__V1__RESPONSE__BODY_PRODUCE ||
                         resp->produce->count != s->records)) {
        err = SL_EPROTO;
        msg = "unexpected answer to Produce";
    }
    if (err != SL_OK) {
        set_err(w->err, "produce: %s (%s)", sl_errname(err), msg != NULL ? msg : "");
    }
    pthread_mutex_lock(&w->mu);
    if (err == SL_OK) {
        w->acked_total += s->records;
        if (now >= t_meas && now < t_end) {
            w->acked_window += s->records;
            bench_hist_record(&w->ack, now - s->sent_ns);
        }
    } else {
        w->failed += s->records;
    }
    w->free_slots[w->nfree++] = s;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    sl_response_free(resp);
}

static struct pslot *slot_get(struct pworker *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->nfree == 0) {
        pthread_cond_wait(&w->cv, &w->mu);
    }
    struct pslot *s = w->free_slots[--w->nfree];
    pthread_mutex_unlock(&w->mu);
    return s;
}

static void slots_drain(struct pworker *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->nfree < w->nslots) {
        pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
}

static void produce_req(sl_request *req, Sluice__V1__Produce *body, const char *stream,
                        uint32_t shard, const uint8_t *batch, size_t len)
{
    Sluice__V1__Produce b = SLUICE__V1__PRODUCE__INIT;
    *body = b;
    body->stream = (char *)stream;
    body->shard = shard;
    body->ack = (Sluice__V1__AckMode)(O->ack_durable ? SLUICE_ACK_DURABLE : SLUICE_ACK_WRITTEN);
    body->batch.data = (uint8_t *)batch;
    body->batch.len = len;
    sl_request r = SLUICE__V1__REQUEST__INIT;
    *req = r;
    req->body_case = SLUICE__V1__REQUEST__BODY_PRODUCE;
    req->produce = body;
}

static void slot_send(struct pslot *s, const char *stream, uint32_t shard, size_t len)
{
    if (len == 0) {
        on_produced(s, SL_ETOOBIG, "the batch does not fit its buffer", NULL);
        return;
    }
    Sluice__V1__Produce body;
    sl_request req;
    produce_req(&req, &body, stream, shard, s->buf, len);
    s->sent_ns = bench_now_ns();
    int rc = sl_client_call_async(s->w->c, &req, 0, on_produced, s);
    if (rc != SL_OK) {
        on_produced(s, rc, sluice_last_error(), NULL);
    }
}

/* One record without a key, `value` (NUL-terminated), in `buf`; returns the batch's length
 * or 0. */
static size_t batch_one(uint8_t *buf, size_t cap, const char *value)
{
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, buf, cap);
    struct sl_record rec = {
        .value = value, .value_len = (uint32_t)strlen(value), .timestamp_ms = sl_clock_wall_ms()};
    size_t len = 0;
    if (sl_batch_builder_add(&b, &rec) != SL_OK ||
        sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, &len) != SL_OK) {
        return 0;
    }
    return len;
}

/* --batch records for `shard` with keys of its pool; returns the length or 0. */
static size_t batch_many(struct pworker *w, struct pslot *s, const struct keypool *kp,
                         uint32_t shard)
{
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, s->buf, s->cap);
    uint64_t now_ms = sl_clock_wall_ms();
    for (uint32_t i = 0; i < O->batch; i++) {
        uint64_t r = rng_next(&w->rng);
        const char *key =
            kp->keys + ((size_t)shard * KEYS_PER_SHARD + r % KEYS_PER_SHARD) * KEY_BYTES;
        struct sl_record rec = {.key = key,
                                .key_len = KEY_BYTES,
                                .value = w->pool + (r >> 8) % VALUE_POOL_BYTES,
                                .value_len = O->record_bytes,
                                .timestamp_ms = now_ms};
        if (sl_batch_builder_add(&b, &rec) != SL_OK) {
            return 0;
        }
    }
    size_t len = 0;
    if (sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, &len) != SL_OK) {
        return 0;
    }
    return len;
}

/* Bytes of one produce run's batch at most. */
static size_t batch_cap(void)
{
    char key[KEY_BYTES] = {0};
    struct sl_record rec = {.key = key, .key_len = KEY_BYTES, .value_len = O->record_bytes};
    return SL_BATCH_HEADER_BYTES + (size_t)O->batch * sl_batch_record_bytes(&rec, 0) + 64;
}

static void *pworker_main(void *arg)
{
    struct pworker *w = arg;
    char name[NAME_MAX_LEN];
    if (w->c == NULL) {
        atomic_fetch_add(&workers_done, 1);
        return NULL;
    }
    if (w->job == JOB_FILL) {
        uint64_t total = (uint64_t)n_live * O->shards;
        for (;;) {
            uint64_t k = atomic_fetch_add(&fill_next, 1);
            if (k >= total || atomic_load(&abort_step)) {
                break;
            }
            struct pslot *s = slot_get(w);
            stream_name(name, sizeof(name), live[k / O->shards]);
            s->records = 1;
            slot_send(s, name, (uint32_t)(k % O->shards), batch_one(s->buf, s->cap, FILL_VALUE));
        }
    } else {
        int four = w->job == JOB_FOUR;
        const struct keypool *kp = four ? &kp_four : &kp_many;
        if (four) {
            snprintf(name, sizeof(name), "%s", FOUR_STREAM);
        }
        while (bench_now_ns() < t_end && !atomic_load(&abort_step)) {
            struct pslot *s = slot_get(w);
            uint64_t r = rng_next(&w->rng);
            uint32_t shard = (uint32_t)((r >> 32) % kp->shards);
            if (!four) {
                stream_name(name, sizeof(name), live[(r & 0xffffffffu) % n_live]);
            }
            s->records = O->batch;
            slot_send(s, name, shard, batch_many(w, s, kp, shard));
        }
    }
    slots_drain(w);
    atomic_fetch_add(&workers_done, 1);
    return NULL;
}

static void pworker_fini(struct pworker *w)
{
    if (w->c != NULL) {
        sluice_client_free(w->c);
    }
    for (uint32_t i = 0; i < w->nslots; i++) {
        free(w->slots[i].buf);
    }
    free(w->slots);
    free(w->free_slots);
    free(w->pool);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

/* Runs `n` producer threads of `job` (nslots requests of `cap` bytes each in flight) to
 * completion; their figures are added into the returned array (calloc'ed, n entries,
 * joined and finished: the caller frees it). */
static struct pworker *pworkers_run(enum pjob job, uint32_t n, uint32_t nslots, size_t cap,
                                    char *err)
{
    struct pworker *ws = calloc(n, sizeof(*ws));
    if (ws == NULL) {
        set_err(err, "out of memory");
        return NULL;
    }
    atomic_store(&workers_done, 0);
    atomic_store(&abort_step, 0);
    for (uint32_t i = 0; i < n; i++) {
        struct pworker *w = &ws[i];
        w->job = job;
        w->err = err;
        w->rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)getpid() << 20) ^ (i + 1) ^ bench_now_ns();
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        bench_hist_reset(&w->ack);
        w->slots = calloc(nslots, sizeof(*w->slots));
        w->free_slots = calloc(nslots, sizeof(*w->free_slots));
        w->pool = job == JOB_FILL ? NULL : malloc(VALUE_POOL_BYTES + O->record_bytes);
        int ok = w->slots != NULL && w->free_slots != NULL && (job == JOB_FILL || w->pool);
        for (uint32_t k = 0; ok && k < nslots; k++) {
            w->slots[k] = (struct pslot){.w = w, .buf = malloc(cap), .cap = cap};
            ok = w->slots[k].buf != NULL;
            w->free_slots[k] = &w->slots[k];
            w->nslots = w->nfree = k + 1;
        }
        if (!ok) {
            set_err(err, "out of memory");
            continue;
        }
        for (size_t k = 0; w->pool != NULL && k < VALUE_POOL_BYTES + O->record_bytes; k++) {
            w->pool[k] = (uint8_t)('a' + (rng_next(&w->rng) >> 60));
        }
        connect_client(&w->c, err);
    }
    for (uint32_t i = 0; i < n; i++) {
        ws[i].started = pthread_create(&ws[i].th, NULL, pworker_main, &ws[i]) == 0;
        if (!ws[i].started) {
            set_err(err, "pthread_create failed");
            atomic_fetch_add(&workers_done, 1);
        }
    }
    watch(&workers_done, n, err);
    for (uint32_t i = 0; i < n; i++) {
        if (ws[i].started) {
            pthread_join(ws[i].th, NULL);
        }
        pworker_fini(&ws[i]);
    }
    return ws;
}

/* ---- 1. create ---- */

static atomic_uint create_next, created_ok;
static atomic_int create_stop;

struct creator {
    pthread_t th;
    int started;
    sluice_client *c;
};

static void *create_main(void *arg)
{
    struct creator *cr = arg;
    struct sluice_stream_opts so = {.shard_count = O->shards};
    char name[NAME_MAX_LEN];
    while (cr->c != NULL && !atomic_load(&create_stop) && !atomic_load(&abort_step)) {
        uint32_t i = atomic_fetch_add(&create_next, 1);
        if (i >= O->streams) {
            break;
        }
        stream_name(name, sizeof(name), i);
        int rc = sluice_stream_create(cr->c, name, &so, NULL);
        if (rc == SL_OK) {
            made[i] = 1;
            atomic_fetch_add(&created_ok, 1);
            continue;
        }
        pthread_mutex_lock(&err_mu);
        if (res.create_err[0] == '\0') {
            snprintf(res.create_err, sizeof(res.create_err), "%s: %s", sl_errname(rc),
                     sluice_last_error());
        }
        if (res.create_failed_at < 0 || i < res.create_failed_at) {
            res.create_failed_at = i;
        }
        res.create_failures++;
        pthread_mutex_unlock(&err_mu);
        atomic_store(&create_stop, 1);
    }
    atomic_fetch_add(&workers_done, 1);
    return NULL;
}

static void step_create(void)
{
    sluice_client *conns[CREATE_CONNS] = {0};
    struct creator cr[CREATE_THREADS];
    atomic_store(&workers_done, 0);
    atomic_store(&abort_step, 0);
    for (uint32_t i = 0; i < CREATE_CONNS; i++) {
        connect_client(&conns[i], res.create_err);
    }
    uint64_t t0 = bench_now_ns();
    for (uint32_t i = 0; i < CREATE_THREADS; i++) {
        cr[i].c = conns[i % CREATE_CONNS];
        cr[i].started = pthread_create(&cr[i].th, NULL, create_main, &cr[i]) == 0;
        if (!cr[i].started) {
            set_err(res.create_err, "pthread_create failed");
            atomic_fetch_add(&workers_done, 1);
        }
    }
    watch(&workers_done, CREATE_THREADS, res.create_err);
    res.create_s = secs(bench_now_ns() - t0);
    for (uint32_t i = 0; i < CREATE_THREADS; i++) {
        if (cr[i].started) {
            pthread_join(cr[i].th, NULL);
        }
    }
    for (uint32_t i = 0; i < CREATE_CONNS; i++) {
        sluice_client_free(conns[i]);
    }
    for (uint32_t i = 0; i < O->streams; i++) {
        if (made[i]) {
            live[n_live++] = i;
        }
    }
    res.created_streams = n_live;
}

/* ---- 2. a record to every shard, then the idle broker ---- */

static void step_fill(void)
{
    atomic_store(&fill_next, 0);
    t_meas = 0;
    t_end = UINT64_MAX;
    uint64_t t0 = bench_now_ns();
    struct pworker *ws =
        pworkers_run(JOB_FILL, O->producers, FILL_INFLIGHT,
                     SL_BATCH_HEADER_BYTES + sizeof(FILL_VALUE) + 64, res.fill_err);
    res.fill_s = secs(bench_now_ns() - t0);
    for (uint32_t i = 0; ws != NULL && i < O->producers; i++) {
        res.fill_ok += ws[i].acked_total;
        res.fill_failed += ws[i].failed;
    }
    free(ws);
}

/* ---- 3. restart ---- */

/* Produces one record durably to a random shard and reads it back. */
static int probe(sluice_client *c, uint64_t *rng, int *on_many, char *why, size_t cap)
{
    char name[NAME_MAX_LEN], value[64];
    uint64_t r = rng_next(rng);
    uint32_t shard;
    *on_many = n_live > 0;
    if (*on_many) {
        stream_name(name, sizeof(name), live[(r & 0xffffffffu) % n_live]);
        shard = (uint32_t)((r >> 32) % O->shards);
    } else {
        snprintf(name, sizeof(name), "%s", FOUR_STREAM);
        shard = (uint32_t)((r >> 32) % FOUR_SHARDS);
    }
    snprintf(value, sizeof(value), "probe %016" PRIx64, rng_next(rng));
    uint8_t buf[256];
    size_t len = batch_one(buf, sizeof(buf), value);
    Sluice__V1__Produce body;
    sl_request req;
    produce_req(&req, &body, name, shard, buf, len);
    sl_response *resp = NULL;
    int rc = sl_client_call(c, &req, 0, &resp);
    if (rc != SL_OK || resp->body_case != SLUICE__V1__RESPONSE__BODY_PRODUCE ||
        resp->produce->count != 1) {
        snprintf(why, cap, "produce to %s/%u: %s (%s)", name, shard, sl_errname(rc),
                 rc != SL_OK ? sluice_last_error() : "unexpected answer");
        sl_response_free(resp);
        return rc != SL_OK ? rc : SL_EPROTO;
    }
    uint64_t seq = resp->produce->base_seq;
    sl_response_free(resp);
    struct sluice_consumer_opts co = {
        .start = {.kind = SLUICE_AT_SEQUENCE, .seq = seq}, .shards = &shard, .shards_len = 1};
    sluice_consumer *sc = NULL;
    rc = sluice_consumer_new(c, name, NULL, &co, &sc);
    if (rc != SL_OK) {
        snprintf(why, cap, "read %s/%u: %s (%s)", name, shard, sl_errname(rc), sluice_last_error());
        return rc;
    }
    struct sluice_record rec;
    size_t n = 0;
    uint64_t deadline = bench_now_ns() + PROBE_READ_NS;
    while (n == 0 && rc == SL_OK && bench_now_ns() < deadline) {
        rc = sluice_consumer_poll(sc, &rec, 1, &n, 100);
    }
    int ok = rc == SL_OK && n == 1 && rec.seq == seq && rec.value_len == strlen(value) &&
             memcmp(rec.value, value, rec.value_len) == 0;
    if (!ok) {
        snprintf(why, cap, "read %s/%u at %" PRIu64 ": %s", name, shard, seq,
                 rc != SL_OK ? sluice_last_error()
                 : n == 0    ? "nothing within 10 s"
                             : "another record");
    }
    sluice_consumer_free(sc);
    return ok ? SL_OK : rc != SL_OK ? rc : SL_ECORRUPT;
}

static void step_restart(int sig, struct restart_res *r)
{
    r->ran = 1;
    r->port_s = r->ready_s = -1;
    r->after.rss_kib = r->after.fds = -1;
    if (broker_up()) {
        uint64_t ns = 0;
        int st = bench_broker_halt(&bb, sig, &ns);
        r->stop_s = secs(ns);
        last_status = st;
        if (sig == SIGTERM && (!WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
            char t[64], tail[200];
            status_text(st, t, sizeof(t));
            log_tail(tail, sizeof(tail));
            set_err(r->err, "the clean stop ended with %s; last log line: %s", t, tail);
        }
    } else {
        r->stop_s = -1;
        broker_gone(r->err);
        set_err(r->err, "the broker was not running");
    }
    int loaded_before = log_loaded_lines();
    r->loaded_s = -1;
    uint64_t t0 = bench_now_ns(), rng = t0 ^ ((uint64_t)sig << 40);
    bench_broker_respawn(&bb, &bo);
    sluice_client *c = NULL;
    char why[ERR_MAX] = "";
    for (;;) {
        uint64_t now = bench_now_ns();
        if (!broker_up()) {
            char err[ERR_MAX] = "";
            broker_gone(err);
            set_err(r->err, "after %.2f s of start-up: %s", secs(now - t0), err);
            return;
        }
        if (now - t0 > READY_TIMEOUT_NS) {
            set_err(r->err, "not serving after %.0f s: %s", secs(now - t0), why);
            return;
        }
        if (c == NULL) {
            struct sluice_client_opts co = {.tls_ca_file = O->tls_ca, .connect_timeout_ms = 1000};
            if (sluice_client_new(bb.addr, &co, &c) != SL_OK) {
                snprintf(why, sizeof(why), "connect: %s", sluice_last_error());
                c = NULL;
                bench_sleep_ns(2000000);
                continue;
            }
            r->port_s = secs(bench_now_ns() - t0);
        }
        int on_many = 0;
        if (probe(c, &rng, &on_many, why, sizeof(why)) == SL_OK) {
            r->ready_s = secs(bench_now_ns() - t0);
            res.probes_many += on_many != 0;
            break;
        }
        bench_sleep_ns(10000000);
    }
    sluice_client_free(c);
    /* The shards of the streams not used yet open in the background: the
     * produce step measures many active shards, not that start-up. */
    while (broker_up() && bench_now_ns() - t0 < READY_TIMEOUT_NS) {
        if (log_loaded_lines() > loaded_before) {
            r->loaded_s = secs(bench_now_ns() - t0);
            break;
        }
        bench_sleep_ns(20000000);
    }
    bench_sleep_ns(SETTLE_NS);
    sample_now(&r->after);
}

/* ---- 4. produce over many shards, then over 4, then read back ---- */

static void step_produce(enum pjob job, struct prun *p)
{
    p->ran = 1;
    p->shards = job == JOB_FOUR ? FOUR_SHARDS : n_live * O->shards;
    bench_hist_reset(&p->ack);
    uint32_t nslots =
        O->inflight == 0 ? INFLIGHT_BATCHES_DEFAULT : (O->inflight + O->batch - 1) / O->batch;
    uint64_t t0 = bench_now_ns();
    t_meas = t0 + (uint64_t)(O->warmup_s * 1e9);
    t_end = t_meas + (uint64_t)(O->duration_s * 1e9);
    struct pworker *ws = pworkers_run(job, O->producers, nslots, batch_cap(), p->err);
    p->seconds = O->duration_s;
    for (uint32_t i = 0; ws != NULL && i < O->producers; i++) {
        p->window += ws[i].acked_window;
        p->acked_total += ws[i].acked_total;
        p->failed += ws[i].failed;
        bench_hist_merge(&p->ack, &ws[i].ack);
    }
    free(ws);
}

struct cworker {
    pthread_t th;
    int started;
    uint64_t got;
};

static atomic_uint_fast64_t consume_next;

/* Reads shards [first, first + n) of `name` from the oldest record to the tail. */
static void consume_chunk(sluice_client *c, const char *name, uint32_t first, uint32_t n,
                          struct sluice_record *recs, uint64_t *got)
{
    uint32_t shards[CONSUME_CHUNK];
    for (uint32_t i = 0; i < n; i++) {
        shards[i] = first + i;
    }
    struct sluice_consumer_opts co = {.start = {.kind = SLUICE_TRIM_HORIZON},
                                      .shards = shards,
                                      .shards_len = n,
                                      .fetch_max_bytes = CONSUME_FETCH_BYTES};
    sluice_consumer *sc = NULL;
    int rc = sluice_consumer_new(c, name, NULL, &co, &sc);
    if (rc != SL_OK) {
        set_err(res.consume_err, "consumer of %s: %s (%s)", name, sl_errname(rc),
                sluice_last_error());
        return;
    }
    uint64_t last = bench_now_ns();
    while (!atomic_load(&abort_step)) {
        size_t k = 0;
        rc = sluice_consumer_poll(sc, recs, CONSUME_POLL_MAX, &k, CONSUME_POLL_MS);
        uint64_t now = bench_now_ns();
        if (rc != SL_OK) {
            set_err(res.consume_err, "poll %s shards %u..%u: %s (%s)", name, first, first + n - 1,
                    sl_errname(rc), sluice_last_error());
            break;
        }
        *got += k;
        if (k > 0) {
            last = now;
        } else if (sluice_consumer_caught_up(sc)) {
            break;
        } else if (now - last > CONSUME_STALL_NS) {
            set_err(res.consume_err, "%s shards %u..%u: no progress for %.0f s", name, first,
                    first + n - 1, secs(CONSUME_STALL_NS));
            break;
        }
    }
    sluice_consumer_free(sc);
}

static void *consume_main(void *arg)
{
    struct cworker *w = arg;
    sluice_client *c = NULL;
    struct sluice_record *recs = calloc(CONSUME_POLL_MAX, sizeof(*recs));
    if (recs == NULL) {
        set_err(res.consume_err, "out of memory");
    } else if (connect_client(&c, res.consume_err) == SL_OK) {
        uint32_t per = (O->shards + CONSUME_CHUNK - 1) / CONSUME_CHUNK;
        uint64_t total = (uint64_t)n_live * per;
        char name[NAME_MAX_LEN];
        for (;;) {
            uint64_t k = atomic_fetch_add(&consume_next, 1);
            if (k >= total || atomic_load(&abort_step)) {
                break;
            }
            stream_name(name, sizeof(name), live[k / per]);
            uint32_t first = (uint32_t)(k % per) * CONSUME_CHUNK;
            uint32_t n = O->shards - first < CONSUME_CHUNK ? O->shards - first : CONSUME_CHUNK;
            consume_chunk(c, name, first, n, recs, &w->got);
        }
        sluice_client_free(c);
    }
    free(recs);
    atomic_fetch_add(&workers_done, 1);
    return NULL;
}

static void step_consume(void)
{
    res.consume_ran = 1;
    res.expected = res.fill_ok + res.probes_many + res.many.acked_total;
    res.uncertain = res.fill_failed + res.many.failed;
    struct cworker *ws = calloc(O->consumers, sizeof(*ws));
    if (ws == NULL) {
        set_err(res.consume_err, "out of memory");
        return;
    }
    atomic_store(&workers_done, 0);
    atomic_store(&abort_step, 0);
    atomic_store(&consume_next, 0);
    uint64_t t0 = bench_now_ns();
    for (uint32_t i = 0; i < O->consumers; i++) {
        ws[i].started = pthread_create(&ws[i].th, NULL, consume_main, &ws[i]) == 0;
        if (!ws[i].started) {
            set_err(res.consume_err, "pthread_create failed");
            atomic_fetch_add(&workers_done, 1);
        }
    }
    watch(&workers_done, O->consumers, res.consume_err);
    res.consume_s = secs(bench_now_ns() - t0);
    for (uint32_t i = 0; i < O->consumers; i++) {
        if (ws[i].started) {
            pthread_join(ws[i].th, NULL);
        }
        res.consumed += ws[i].got;
    }
    free(ws);
}

/* The read-back matched: everything acknowledged, and nothing beyond the records whose
 * produce failed (those may or may not have been stored). */
static int consume_verified(void)
{
    return res.consume_ran && res.consume_err[0] == '\0' && res.consumed >= res.expected &&
           res.consumed <= res.expected + res.uncertain;
}

/* ---- output ---- */

static double per_s(double n, double s)
{
    return s > 0 ? n / s : 0;
}

static double rss_per_shard_kib(void)
{
    uint64_t shards = (uint64_t)n_live * O->shards;
    if (shards == 0 || res.idle.rss_kib < 0 || res.empty.rss_kib < 0) {
        return -1;
    }
    return (double)(res.idle.rss_kib - res.empty.rss_kib) / (double)shards;
}

static double ratio(void)
{
    double a = per_s((double)res.many.window, res.many.seconds);
    double b = per_s((double)res.four.window, res.four.seconds);
    return res.many.ran && res.four.ran && b > 0 && res.many.err[0] == '\0' &&
                   res.four.err[0] == '\0'
               ? a / b
               : -1;
}

static void json_str(const char *name, const char *v)
{
    printf(", \"%s\": ", name);
    if (v == NULL || v[0] == '\0') {
        printf("null");
        return;
    }
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            printf("\\%c", *p);
        } else if (*p < 0x20) {
            printf("\\u%04x", *p);
        } else {
            putchar(*p);
        }
    }
    putchar('"');
}

/* A number; null when negative (not measured). */
static void json_num(const char *name, double v, int decimals)
{
    if (v < 0) {
        printf(", \"%s\": null", name);
    } else {
        printf(", \"%s\": %.*f", name, decimals, v);
    }
}

static void json_us(const char *name, const struct bench_hist *h, double p)
{
    json_num(name, h->count == 0 ? -1 : (double)bench_hist_percentile(h, p) / 1e3, 1);
}

static void json_sample(const char *prefix, const struct sample *s)
{
    char n[64];
    snprintf(n, sizeof(n), "%s_rss_kib", prefix);
    json_num(n, (double)s->rss_kib, 0);
    snprintf(n, sizeof(n), "%s_fds", prefix);
    json_num(n, (double)s->fds, 0);
}

static void json_restart(const char *prefix, const struct restart_res *r)
{
    char n[64];
    snprintf(n, sizeof(n), "%s_stop_s", prefix);
    json_num(n, r->ran ? r->stop_s : -1, 3);
    snprintf(n, sizeof(n), "%s_port_s", prefix);
    json_num(n, r->ran ? r->port_s : -1, 3);
    snprintf(n, sizeof(n), "%s_s", prefix);
    json_num(n, r->ran ? r->ready_s : -1, 3);
    snprintf(n, sizeof(n), "%s_loaded_s", prefix);
    json_num(n, r->ran ? r->loaded_s : -1, 3);
    snprintf(n, sizeof(n), "%s_after", prefix);
    json_sample(n, &r->after);
    snprintf(n, sizeof(n), "%s_error", prefix);
    json_str(n, r->ran ? r->err : "not run");
}

static void json_prun(const char *prefix, const struct prun *p)
{
    char n[64];
    snprintf(n, sizeof(n), "%s_shards", prefix);
    json_num(n, p->ran ? (double)p->shards : -1, 0);
    snprintf(n, sizeof(n), "%s_records_per_s", prefix);
    json_num(n, p->ran ? per_s((double)p->window, p->seconds) : -1, 0);
    snprintf(n, sizeof(n), "%s_records", prefix);
    json_num(n, p->ran ? (double)p->acked_total : -1, 0);
    snprintf(n, sizeof(n), "%s_failed_records", prefix);
    json_num(n, p->ran ? (double)p->failed : -1, 0);
    snprintf(n, sizeof(n), "%s_ack_p50_us", prefix);
    json_us(n, &p->ack, 50);
    snprintf(n, sizeof(n), "%s_ack_p99_us", prefix);
    json_us(n, &p->ack, 99);
    snprintf(n, sizeof(n), "%s_error", prefix);
    json_str(n, p->ran ? p->err : "not run");
}

static void print_json(void)
{
    printf("{\"mode\": \"scale\", \"streams\": %u, \"shards_per_stream\": %u, \"shards\": %" PRIu64
           ", \"record_bytes\": %u, \"batch\": %u, \"producers\": %u, \"consumers\": %u, "
           "\"ack\": \"%s\", \"flush\": \"%s\", \"warmup\": %.3f, \"duration\": %.3f",
           O->streams, O->shards, (uint64_t)O->streams * O->shards, O->record_bytes, O->batch,
           O->producers, O->consumers, O->ack_durable ? "durable" : "written", O->flush,
           O->warmup_s, O->duration_s);
    json_num("rlimit_nofile_soft", (double)res.nofile_soft, 0);
    json_num("rlimit_nofile_hard", (double)res.nofile_hard, 0);
    json_str("four_stream_error", res.four_err);
    json_num("created_streams", res.created_streams, 0);
    json_num("created_shards", (double)res.created_streams * O->shards, 0);
    json_num("create_seconds", res.create_s, 3);
    json_num("create_streams_per_s", per_s(res.created_streams, res.create_s), 1);
    json_num("create_shards_per_s", per_s((double)res.created_streams * O->shards, res.create_s),
             1);
    json_num("create_failed_at_stream", (double)res.create_failed_at, 0);
    json_num("create_failures", res.create_failures, 0);
    json_str("create_error", res.create_err);
    json_num("fill_records", (double)res.fill_ok, 0);
    json_num("fill_failed_records", (double)res.fill_failed, 0);
    json_num("fill_seconds", res.fill_s, 3);
    json_str("fill_error", res.fill_err);
    json_sample("empty", &res.empty);
    json_sample("created", &res.created);
    json_sample("idle", &res.idle);
    json_num("idle_rss_per_shard_kib", rss_per_shard_kib(), 2);
    json_num("idle_cpu_pct", res.idle_cpu_pct, 1);
    json_restart("restart_clean", &res.clean);
    json_restart("restart_kill9", &res.kill9);
    json_prun("produce_many", &res.many);
    json_prun("produce_four", &res.four);
    json_num("produce_ratio", ratio(), 3);
    json_num("consume_records", res.consume_ran ? (double)res.consumed : -1, 0);
    json_num("consume_expected", res.consume_ran ? (double)res.expected : -1, 0);
    json_num("consume_seconds", res.consume_ran ? res.consume_s : -1, 3);
    json_num("consume_records_per_s",
             res.consume_ran ? per_s((double)res.consumed, res.consume_s) : -1, 0);
    printf(", \"consume_verified\": %s", res.consume_ran && consume_verified() ? "true" : "false");
    json_str("consume_error", res.consume_ran ? res.consume_err : "not run");
    printf("}\n");
}

static const char *mib(char *buf, size_t cap, long kib)
{
    if (kib < 0) {
        snprintf(buf, cap, "n/a");
    } else {
        snprintf(buf, cap, "%.1f MiB", (double)kib / 1024);
    }
    return buf;
}

static void print_err(const char *e)
{
    if (e[0] != '\0') {
        printf("               error: %s\n", e);
    }
}

static void print_restart(const char *what, const struct restart_res *r)
{
    char a[32];
    if (!r->ran) {
        printf("  %-12s not run\n", what);
        return;
    }
    printf("  %-12s stop %.2f s; serving after %.2f s (Hello after %.2f s); every stream "
           "loaded after %.2f s; then RSS %s, %ld fds\n",
           what, r->stop_s, r->ready_s, r->port_s, r->loaded_s,
           mib(a, sizeof(a), r->after.rss_kib), r->after.fds);
    print_err(r->err);
}

static void print_prun(const char *what, const struct prun *p)
{
    if (!p->ran) {
        printf("  %-12s not run\n", what);
        return;
    }
    printf("  %-12s %u shards: %.0f records/s (%" PRIu64 " acked in all, %" PRIu64
           " failed), batch ack p50 %.2f ms, p99 %.2f ms\n",
           what, p->shards, per_s((double)p->window, p->seconds), p->acked_total, p->failed,
           (double)bench_hist_percentile(&p->ack, 50) / 1e6,
           (double)bench_hist_percentile(&p->ack, 99) / 1e6);
    print_err(p->err);
}

static void print_human(void)
{
    char a[32], b[32], c[32];
    uint64_t shards = (uint64_t)n_live * O->shards;
    printf(PROG ": mode scale, %u streams x %u shards = %" PRIu64 " shards, %u B records, "
                "batch %u, %u producers, %u consumers, ack %s, flush %s\n",
           O->streams, O->shards, (uint64_t)O->streams * O->shards, O->record_bytes, O->batch,
           O->producers, O->consumers, O->ack_durable ? "durable" : "written", O->flush);
    printf("  broker       RLIMIT_NOFILE %ld (hard %ld); before the creates RSS %s, %ld fds\n",
           res.nofile_soft, res.nofile_hard, mib(a, sizeof(a), res.empty.rss_kib), res.empty.fds);
    print_err(res.four_err);
    printf("  create       %u streams (%" PRIu64 " shards) in %.2f s: %.0f streams/s, %.0f "
           "shards/s\n",
           res.created_streams, shards, res.create_s, per_s(res.created_streams, res.create_s),
           per_s((double)shards, res.create_s));
    if (res.create_failed_at >= 0) {
        printf("               failed from stream %" PRId64 " on (%u creates failed; "
               "the creates stop at the first failure)\n",
               res.create_failed_at, res.create_failures);
    }
    print_err(res.create_err);
    printf("  first write  %" PRIu64 " shards in %.2f s (%.0f/s), %" PRIu64 " failed\n",
           res.fill_ok, res.fill_s, per_s((double)res.fill_ok, res.fill_s), res.fill_failed);
    print_err(res.fill_err);
    double per = rss_per_shard_kib();
    printf("  idle         RSS %s (%s after the creates), %.1f KiB per shard; %ld fds (%ld after "
           "the creates); CPU %.1f%% of a core\n",
           mib(b, sizeof(b), res.idle.rss_kib), mib(c, sizeof(c), res.created.rss_kib),
           per < 0 ? 0 : per, res.idle.fds, res.created.fds, res.idle_cpu_pct);
    print_restart("restart", &res.clean);
    print_restart("kill -9", &res.kill9);
    print_prun("produce", &res.many);
    print_prun("produce 4", &res.four);
    double r = ratio();
    if (r >= 0) {
        printf("  ratio        %.3f (records/s over %u shards / over 4)\n", r, res.many.shards);
    }
    if (res.consume_ran) {
        printf("  consume      %" PRIu64 " records in %.2f s: %.0f records/s; expected %" PRIu64
               " acknowledged (+ up to %" PRIu64 " failed): %s\n",
               res.consumed, res.consume_s, per_s((double)res.consumed, res.consume_s),
               res.expected, res.uncertain, consume_verified() ? "verified" : "MISMATCH");
        print_err(res.consume_err);
    } else {
        printf("  consume      not run\n");
    }
}

/* ---- the run ---- */

static int any_error(void)
{
    return res.four_err[0] || res.create_err[0] || res.fill_err[0] || res.clean.err[0] ||
           res.kill9.err[0] || res.many.err[0] || res.four.err[0] || !res.clean.ran ||
           !res.kill9.ran || !res.many.ran || !res.four.ran || !consume_verified();
}

static void create_four(void)
{
    sluice_client *c = NULL;
    if (connect_client(&c, res.four_err) != SL_OK) {
        return;
    }
    struct sluice_stream_opts so = {.shard_count = FOUR_SHARDS};
    int rc = sluice_stream_create(c, FOUR_STREAM, &so, NULL);
    if (rc != SL_OK) {
        set_err(res.four_err, "create %s: %s (%s)", FOUR_STREAM, sl_errname(rc),
                sluice_last_error());
    }
    sluice_client_free(c);
}

int scale_run(const struct scale_opts *o)
{
    O = o;
    if (batch_cap() > BATCH_BYTES_MAX) {
        fprintf(stderr,
                PROG ": --batch %u of --record-bytes %u is over the broker's 8 MiB batch "
                     "limit\n",
                o->batch, o->record_bytes);
        return 2;
    }
    made = calloc(o->streams, 1);
    live = calloc(o->streams, sizeof(*live));
    if (made == NULL || live == NULL ||
        keypool_init(&kp_many, o->shards, 0x5EED0001u ^ (uint64_t)getpid()) != SL_OK ||
        keypool_init(&kp_four, FOUR_SHARDS, 0x5EED0002u ^ (uint64_t)getpid()) != SL_OK) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    res.create_failed_at = -1;
    snprintf(log_path, sizeof(log_path), "%s/sluice-bench-scale-%d.log", o->dir, (int)getpid());
    /* at log level info: the restart step waits for "all N streams loaded" */
    static const char *extra[BENCH_BROKER_EXTRA_MAX];
    int extra_len = 0;
    extra[extra_len++] = "--log-level";
    extra[extra_len++] = "info";
    for (int i = 0; i < o->extra_len && extra_len < BENCH_BROKER_EXTRA_MAX; i++) {
        extra[extra_len++] = o->extra[i];
    }
    bo = (struct bench_broker_opts){.flush = o->flush,
                                    .extra = extra,
                                    .extra_len = extra_len,
                                    .cpu = o->cpu_server,
                                    .log_file = log_path};
    if (!o->json) {
        fprintf(stderr, PROG ": scale: %u streams x %u shards; broker log %s\n", o->streams,
                o->shards, log_path);
    }
    bench_broker_start_opts(&bb, "scale", o->dir, &bo);
    proc_nofile(bb.pid, &res.nofile_soft, &res.nofile_hard);
    create_four();
    sample_now(&res.empty);

    long mark = log_mark();
    step_create();
    log_annotate(res.create_err, mark);
    sample_now(&res.created);
    if (!o->json) {
        fprintf(stderr, PROG ": created %u streams in %.2f s; writing a record to every shard\n",
                n_live, res.create_s);
    }
    if (n_live > 0 && broker_up()) {
        mark = log_mark();
        step_fill();
        log_annotate(res.fill_err, mark);
    }
    long cpu0 = bb.pid > 0 ? proc_cpu_ticks(bb.pid) : -1;
    uint64_t idle0 = bench_now_ns();
    bench_sleep_ns(IDLE_NS);
    long cpu1 = bb.pid > 0 ? proc_cpu_ticks(bb.pid) : -1;
    res.idle_cpu_pct = cpu0 < 0 || cpu1 < 0 ? -1
                                            : (double)(cpu1 - cpu0) / (double)sysconf(_SC_CLK_TCK) /
                                                  secs(bench_now_ns() - idle0) * 100;
    if (broker_up()) {
        sample_now(&res.idle);
    } else {
        res.idle.rss_kib = res.idle.fds = -1;
        res.idle_cpu_pct = -1;
    }

    if (!o->json) {
        fprintf(stderr, PROG ": restarting (clean, then kill -9)\n");
    }
    step_restart(SIGTERM, &res.clean);
    if (res.clean.ready_s >= 0) {
        step_restart(SIGKILL, &res.kill9);
    }
    if (res.kill9.ran && res.kill9.ready_s >= 0) {
        if (!o->json) {
            fprintf(stderr, PROG ": producing for %.1f + %.1f s over %u shards, then over 4\n",
                    o->warmup_s, o->duration_s, n_live * o->shards);
        }
        if (n_live > 0) {
            mark = log_mark();
            step_produce(JOB_MANY, &res.many);
            log_annotate(res.many.err, mark);
        }
        if (res.four_err[0] == '\0' && broker_up()) {
            mark = log_mark();
            step_produce(JOB_FOUR, &res.four);
            log_annotate(res.four.err, mark);
        }
        if (n_live > 0 && broker_up()) {
            if (!o->json) {
                fprintf(stderr, PROG ": reading every shard back\n");
            }
            mark = log_mark();
            step_consume();
            log_annotate(res.consume_err, mark);
        }
    }

    if (o->json) {
        print_json();
    } else {
        print_human();
    }
    int failed = any_error();
    bench_broker_stop(&bb, "sluice-bench scale");
    if (failed) {
        fprintf(stderr, PROG ": scale: a step failed; the broker's log is kept: %s\n", log_path);
    } else {
        unlink(log_path);
    }
    free(made);
    free(live);
    free(kp_many.keys);
    free(kp_four.keys);
    return failed ? 1 : 0;
}
