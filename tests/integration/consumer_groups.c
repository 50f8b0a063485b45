/* consumer_groups.c - stream consumer groups that balance themselves, with real member
 * processes (this executable re-run as `member`) against the real broker.
 *
 * While 4 producer threads write to a 16-shard stream, the group goes 1 -> 4 members, one
 * stops cleanly (3), one is killed with SIGKILL (2: its shards move after the session
 * timeout), an in-process member pauses past its session and its commit is refused
 * (SLUICE_EFENCED), a static member joins, is killed and restarted within its session and
 * gets its own shards back, a member is stopped with SIGSTOP past the session timeout
 * (its shards move) and continued (it rejoins), and the group ends with 2 members that
 * read up to the tail. Every member logs, with CLOCK_MONOTONIC microseconds, the shards it
 * is given (A), revokes (R), loses (L) and every record it hands to the application (D).
 *
 * Checks: every acknowledged record was processed at least once; within each member's run
 * on a shard the sequences increase; no two members held a shard at once - a member's
 * last record of a run precedes the next owner's assignment, unless the run ended because
 * the member lost its session (it hands out what it fetched until it hears so; its commits
 * are fenced, the new owner reads those records again); no checkpoint moved
 * backwards (sampled every 100 ms); the zombie's commit refused; static membership kept the
 * shards; the group balanced (shard counts differ by at most one) after every change.
 * Prints the rebalance pause per moved shard (revoke -> assignment at its new owner) and
 * the failover time after SIGKILL.
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STREAM      "cg"
#define GROUP       "g"
#define SHARDS      16u
#define PRODUCERS   4u
#define SESSION_MS  (3000u * IT_SLOWDOWN)
#define MEMBERS_MAX 16u
#define WAIT_MS     30000u
#define ZOMBIE_MS   (1000u * IT_SLOWDOWN) /* the zombie's session */

static struct it_broker broker;
static const char *self_path;

/* ---- the member process ---- */

static volatile sig_atomic_t member_stop;
static FILE *member_log;
static sluice_consumer *member_consumer;

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void on_member_signal(int sig)
{
    (void)sig;
    member_stop = 1;
}

static void log_shards(char kind, const uint32_t *shards, size_t n)
{
    uint64_t gen = 0;
    const char *id = member_consumer != NULL ? sluice_consumer_member_id(member_consumer, &gen)
                                             : "";
    fprintf(member_log, "%c %" PRIu64 " %s %" PRIu64 " %zu", kind, mono_us(), id, gen, n);
    for (size_t i = 0; i < n; i++) {
        fprintf(member_log, " %u", shards[i]);
    }
    fputc('\n', member_log);
    fflush(member_log);
}

static void on_assigned(void *ctx, const uint32_t *shards, size_t n, int lost)
{
    (void)ctx;
    (void)lost;
    log_shards('A', shards, n);
}

static void on_revoked(void *ctx, const uint32_t *shards, size_t n, int lost)
{
    (void)ctx;
    log_shards(lost ? 'L' : 'R', shards, n);
}

static void log_records(const struct sluice_record *recs, size_t n)
{
    uint64_t t = mono_us();
    for (size_t i = 0; i < n; i++) {
        fprintf(member_log, "D %" PRIu64 " %u %" PRIu64 "\n", t, recs[i].shard, recs[i].seq);
    }
    fflush(member_log); /* before the next poll commits them */
}

static int member_main(const char *addr, const char *log_path, const char *instance)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    struct sigaction sa = {.sa_handler = on_member_signal};
    sigaction(SIGTERM, &sa, NULL);
    member_log = fopen(log_path, "a");
    if (member_log == NULL) {
        return 2;
    }
    sluice_client *c = NULL;
    struct sluice_client_opts o = {.request_timeout_ms = 30000, .reconnect_backoff_ms = 50,
                                   .client_id = "it-member"};
    if (sluice_client_new(addr, &o, &c) != SL_OK) {
        fprintf(stderr, "member: connect: %s\n", sluice_last_error());
        return 2;
    }
    struct sluice_consumer_opts co = {
        .auto_commit_ms = 100,
        .session_timeout_ms = SESSION_MS,
        .instance_id = strcmp(instance, "-") != 0 ? instance : NULL,
        .on_assigned = on_assigned,
        .on_revoked = on_revoked,
    };
    if (sluice_consumer_new(c, STREAM, GROUP, &co, &member_consumer) != SL_OK) {
        fprintf(stderr, "member: consumer: %s\n", sluice_last_error());
        return 2;
    }
    static struct sluice_record recs[512];
    int rc = SL_OK;
    while (!member_stop) {
        size_t n = 0;
        rc = sluice_consumer_poll(member_consumer, recs, 512, &n, 100);
        if (rc != SL_OK) {
            fprintf(stderr, "member: poll: %s (%s)\n", sl_errname(rc), sluice_last_error());
            break;
        }
        log_records(recs, n);
    }
    int crc = sluice_consumer_commit(member_consumer);
    sluice_consumer_free(member_consumer);
    sluice_client_free(c);
    fclose(member_log);
    return rc == SL_OK && (crc == SL_OK || crc == SL_EFENCED) ? 0 : 1;
}

/* ---- the test: members, producers, watchers ---- */

struct member {
    pid_t pid;
    char log[160];
    char instance[16];
    uint64_t killed_us; /* SIGKILL time: the end of its runs */
};

static struct member members[MEMBERS_MAX];
static uint32_t n_members;
static atomic_int producing;
static atomic_uint produce_errors;
static atomic_ullong produced;
static atomic_ullong sent;
/* A sanitized broker on two busy cores acknowledges a few hundred records/s, far below the
 * producers' pace: without a bound the backlog outgrows the final flush's deadline. */
#define BACKLOG_MAX 1000u

static int member_spawn(const char *instance)
{
    if (n_members == MEMBERS_MAX) {
        return -1;
    }
    struct member *m = &members[n_members];
    memset(m, 0, sizeof(*m));
    snprintf(m->instance, sizeof(m->instance), "%s", instance != NULL ? instance : "-");
    snprintf(m->log, sizeof(m->log), "%s/member-%u.log", broker.root, n_members);
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        execl(self_path, self_path, "member", broker.addr, m->log, m->instance, (char *)NULL);
        _exit(127);
    }
    m->pid = pid;
    n_members++;
    return (int)(n_members - 1);
}

static int member_reap(struct member *m, int expect_ok)
{
    int st = 0;
    if (waitpid(m->pid, &st, 0) != m->pid) {
        return -1;
    }
    m->pid = 0;
    if (expect_ok && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        fprintf(stderr, "  member %s exited with status 0x%x\n", m->log, st);
        return -1;
    }
    return 0;
}

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    (void)ctx;
    (void)seq;
    if (err != SL_OK) {
        if (atomic_fetch_add(&produce_errors, 1) < 5) {
            fprintf(stderr, "  delivery to shard %u failed: %s (%s)\n", shard, sl_errname(err),
                    sluice_last_error());
        }
    } else {
        atomic_fetch_add(&produced, 1);
    }
}

static void *producer_thread(void *arg)
{
    sluice_client *c = arg;
    sluice_producer *p = NULL;
    struct sluice_producer_opts po = {.linger_ms = 5, .block_when_full = 1};
    if (sluice_producer_new(c, STREAM, &po, &p) != SL_OK) {
        atomic_fetch_add(&produce_errors, 1);
        return NULL;
    }
    char key[16], val[32];
    for (uint32_t i = 0; atomic_load(&producing); i++) {
        int kl = snprintf(key, sizeof(key), "k%u", i % 1000);
        int vl = snprintf(val, sizeof(val), "v%u", i);
        if (sluice_produce(p, key, (size_t)kl, val, (size_t)vl, NULL, 0, on_delivery, NULL) !=
            SL_OK) {
            fprintf(stderr, "  produce: %s\n", sluice_last_error());
            atomic_fetch_add(&produce_errors, 1);
            break;
        }
        atomic_fetch_add(&sent, 1);
        if (i % 20 == 19) {
            it_sleep_ms(20); /* ~1,000 records/s per producer */
        }
        while (atomic_load(&producing) &&
               atomic_load(&sent) - atomic_load(&produced) - atomic_load(&produce_errors) >
                   BACKLOG_MAX) {
            it_sleep_ms(5);
        }
    }
    if (sluice_producer_flush(p, 30000) != SL_OK) {
        fprintf(stderr, "  producer flush: %s\n", sluice_last_error());
        atomic_fetch_add(&produce_errors, 1);
    }
    sluice_producer_free(p);
    return NULL;
}

static uint64_t ckpt_last[SHARDS];
static uint32_t ckpt_backwards;

/* Samples the group's checkpoints: none may be below the last seen. */
static void watch_checkpoints(sluice_client *c)
{
    struct sluice_checkpoint *cps = NULL;
    size_t n = 0;
    if (sluice_checkpoints_get(c, GROUP, STREAM, &cps, &n) != SL_OK) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (cps[i].shard < SHARDS) {
            if (cps[i].seq < ckpt_last[cps[i].shard]) {
                fprintf(stderr, "  checkpoint of shard %u moved back: %" PRIu64 " -> %" PRIu64 "\n",
                        cps[i].shard, ckpt_last[cps[i].shard], cps[i].seq);
                ckpt_backwards++;
            }
            ckpt_last[cps[i].shard] = cps[i].seq;
        }
    }
    free(cps);
}

/* Waits until the group has `want` members, every shard held, counts within one of each
 * other. Samples checkpoints meanwhile. Returns 0, or -1 after WAIT_MS. */
static int wait_balanced(sluice_client *c, uint32_t want)
{
    uint64_t deadline = it_mono_ms() + WAIT_MS;
    while (it_mono_ms() < deadline) {
        watch_checkpoints(c);
        struct sluice_group_info *g = NULL;
        if (sluice_group_describe(c, STREAM, GROUP, &g) == SL_OK) {
            size_t held = 0, lo = SIZE_MAX, hi = 0;
            for (size_t i = 0; i < g->members_len; i++) {
                size_t k = g->members[i].shards_len;
                held += k;
                lo = k < lo ? k : lo;
                hi = k > hi ? k : hi;
            }
            int ok = g->members_len == want && held == SHARDS && hi - lo <= 1;
            sluice_group_info_free(g);
            if (ok) {
                return 0;
            }
        }
        it_sleep_ms(100);
    }
    fprintf(stderr, "  the group did not settle at %u balanced members\n", want);
    return -1;
}

/* The shards the member with `instance` holds (sorted as the broker lists them) and its id. */
static int instance_shards(sluice_client *c, const char *instance, uint32_t *out, size_t *n,
                           char *id, size_t id_cap)
{
    struct sluice_group_info *g = NULL;
    *n = 0;
    if (sluice_group_describe(c, STREAM, GROUP, &g) != SL_OK) {
        return -1;
    }
    int found = -1;
    for (size_t i = 0; i < g->members_len; i++) {
        if (strcmp(g->members[i].instance_id, instance) == 0) {
            memcpy(out, g->members[i].shards, g->members[i].shards_len * sizeof(*out));
            *n = g->members[i].shards_len;
            snprintf(id, id_cap, "%s", g->members[i].member_id);
            found = 0;
        }
    }
    sluice_group_info_free(g);
    return found;
}

/* ---- the logs ---- */

struct run {
    uint32_t member;
    uint64_t start_us, end_us; /* assignment; revoke, loss, kill or end of log */
    char end_kind;             /* 'R', 'L', 'K' (killed), 'E' (stopped) */
    uint64_t last_d_us;        /* 0: nothing delivered */
    uint64_t last_seq;
    int has_seq;
};

#define RUNS_MAX 4096u

static struct run runs[SHARDS][RUNS_MAX];
static uint32_t n_runs[SHARDS];
static uint8_t *seen[SHARDS];
static uint64_t tails[SHARDS];
static uint32_t order_errors, foreign_deliveries;
/* While the zombie holds its shards without polling, a shard revoked for it waits for its
 * expiry: hand-overs in that window are not rebalance pauses. */
static uint64_t zombie_from_us, zombie_to_us;

static void runs_close(struct run **open, uint32_t shard, uint64_t t, char kind)
{
    if (open[shard] != NULL) {
        open[shard]->end_us = t;
        open[shard]->end_kind = kind;
        open[shard] = NULL;
    }
}

static int parse_log(uint32_t idx)
{
    FILE *f = fopen(members[idx].log, "r");
    if (f == NULL) {
        return -1;
    }
    struct run *open[SHARDS] = {0};
    char line[512];
    uint64_t last_t = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        char kind = line[0];
        char *p = line + 2;
        uint64_t t = strtoull(p, &p, 10);
        last_t = t;
        if (kind == 'D') {
            uint32_t shard = (uint32_t)strtoul(p, &p, 10);
            uint64_t seq = strtoull(p, &p, 10);
            if (shard >= SHARDS || open[shard] == NULL) {
                foreign_deliveries++;
                continue;
            }
            struct run *r = open[shard];
            if (r->has_seq && seq <= r->last_seq) {
                order_errors++;
            }
            r->has_seq = 1;
            r->last_seq = seq;
            r->last_d_us = t;
            if (seq < tails[shard]) {
                seen[shard][seq] = 1;
            }
            continue;
        }
        /* A/R/L <t> <member id> <generation> <n> shards... */
        strtok(p, " \n");      /* member id */
        strtok(NULL, " \n");   /* generation */
        char *tok = strtok(NULL, " \n"); /* n */
        while ((tok = strtok(NULL, " \n")) != NULL) {
            uint32_t shard = (uint32_t)strtoul(tok, NULL, 10);
            if (shard >= SHARDS) {
                continue;
            }
            if (kind == 'A') {
                if (open[shard] != NULL || n_runs[shard] == RUNS_MAX) {
                    order_errors++; /* assigned twice without a revoke */
                    continue;
                }
                struct run *r = &runs[shard][n_runs[shard]++];
                *r = (struct run){.member = idx, .start_us = t};
                open[shard] = r;
            } else {
                runs_close(open, shard, t, kind);
            }
        }
    }
    fclose(f);
    for (uint32_t s = 0; s < SHARDS; s++) {
        if (members[idx].killed_us != 0) {
            runs_close(open, s, members[idx].killed_us, 'K');
        } else {
            runs_close(open, s, last_t, 'E');
        }
    }
    return 0;
}

static int cmp_run(const void *a, const void *b)
{
    const struct run *x = a, *y = b;
    return x->start_us < y->start_us ? -1 : x->start_us > y->start_us;
}

TEST(group_balances_hands_over_and_fences)
{
    CHECK(it_broker_start(&broker, NULL) == 0);
    sluice_client *c = NULL;
    CHECK(it_connect(&broker, &c) == SL_OK);
    CHECK(it_create_stream(c, STREAM, SHARDS) == SL_OK);

    atomic_store(&producing, 1);
    pthread_t prod[PRODUCERS];
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        CHECK(pthread_create(&prod[i], NULL, producer_thread, c) == 0);
    }

    /* 1 -> 4 members */
    int m1 = member_spawn(NULL);
    CHECK(m1 >= 0 && wait_balanced(c, 1) == 0);
    int m2 = member_spawn(NULL);
    int m3 = member_spawn(NULL);
    int m4 = member_spawn(NULL);
    CHECK(m2 >= 0 && m3 >= 0 && m4 >= 0 && wait_balanced(c, 4) == 0);

    /* clean stop: 3 */
    kill(members[m4].pid, SIGTERM);
    CHECK(member_reap(&members[m4], 1) == 0);
    CHECK(wait_balanced(c, 3) == 0);

    /* SIGKILL: its shards move once its session expires */
    uint64_t t_kill = it_mono_ms();
    members[m3].killed_us = mono_us();
    kill(members[m3].pid, SIGKILL);
    CHECK(member_reap(&members[m3], 0) == 0);
    CHECK(wait_balanced(c, 2) == 0);
    uint64_t failover_ms = it_mono_ms() - t_kill;
    fprintf(stderr, "  failover after SIGKILL: %" PRIu64 " ms (session timeout %u ms)\n",
            failover_ms, SESSION_MS);
    CHECK(failover_ms <= SESSION_MS + 3000u * IT_SLOWDOWN);

    /* A zombie: an in-process member that stops polling past its session; its commit is
     * refused, and it rejoins on the next poll. */
    {
        /* logged as a member too (this process's member_log), like the others */
        CHECK(n_members < MEMBERS_MAX);
        struct member *zm = &members[n_members++];
        snprintf(zm->log, sizeof(zm->log), "%s/member-zombie.log", broker.root);
        zombie_from_us = mono_us();
        member_log = fopen(zm->log, "w");
        CHECK(member_log != NULL);
        sluice_consumer *z = NULL;
        struct sluice_consumer_opts zo = {.session_timeout_ms = ZOMBIE_MS,
                                          .on_assigned = on_assigned,
                                          .on_revoked = on_revoked};
        CHECK(sluice_consumer_new(c, STREAM, GROUP, &zo, &z) == SL_OK);
        member_consumer = z;
        static struct sluice_record zr[256];
        size_t got = 0;
        uint64_t deadline = it_mono_ms() + WAIT_MS;
        while (got == 0 && it_mono_ms() < deadline) {
            CHECK(sluice_consumer_poll(z, zr, 256, &got, 100) == SL_OK);
            log_records(zr, got);
        }
        CHECK(got > 0);
        it_sleep_ms(ZOMBIE_MS + 1500u * IT_SLOWDOWN); /* past its session: the others take its shards */
        int zrc = sluice_consumer_commit(z);
        fprintf(stderr, "  zombie commit: %s (%s)\n", sl_errname(zrc), sluice_last_error());
        CHECK_EQ(zrc, SL_EFENCED);
        CHECK(sluice_consumer_poll(z, zr, 256, &got, 100) == SL_OK); /* rejoins */
        log_records(zr, got);
        sluice_consumer_free(z); /* leaves */
        member_consumer = NULL;
        zombie_to_us = mono_us();
        fclose(member_log);
        member_log = NULL;
    }
    CHECK(wait_balanced(c, 2) == 0);

    /* Static membership: killed and back within the session, same shards. */
    int s1 = member_spawn("s1");
    CHECK(s1 >= 0 && wait_balanced(c, 3) == 0);
    uint32_t before[SHARDS], after[SHARDS];
    size_t nb = 0, na = 0;
    char id_before[64] = "", id_after[64] = "";
    CHECK(instance_shards(c, "s1", before, &nb, id_before, sizeof(id_before)) == 0 && nb > 0);
    members[s1].killed_us = mono_us();
    kill(members[s1].pid, SIGKILL);
    CHECK(member_reap(&members[s1], 0) == 0);
    int s1b = member_spawn("s1");
    CHECK(s1b >= 0);
    uint64_t deadline = it_mono_ms() + WAIT_MS;
    while (it_mono_ms() < deadline) {
        if (instance_shards(c, "s1", after, &na, id_after, sizeof(id_after)) == 0 &&
            strcmp(id_after, id_before) != 0) {
            break;
        }
        it_sleep_ms(50);
    }
    CHECK(strcmp(id_after, id_before) != 0); /* rejoined: a new id, the old one fenced */
    CHECK_EQ(na, nb);
    CHECK(memcmp(before, after, nb * sizeof(*before)) == 0);
    CHECK(wait_balanced(c, 3) == 0);

    /* SIGSTOP past the session: its shards move; SIGCONT: it rejoins. */
    kill(members[m2].pid, SIGSTOP);
    CHECK(wait_balanced(c, 2) == 0);
    kill(members[m2].pid, SIGCONT);
    CHECK(wait_balanced(c, 3) == 0);

    /* down to 2, producers stop, the group reads to the tail */
    kill(members[s1b].pid, SIGTERM);
    CHECK(member_reap(&members[s1b], 1) == 0);
    CHECK(wait_balanced(c, 2) == 0);
    atomic_store(&producing, 0);
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        pthread_join(prod[i], NULL);
    }
    CHECK_EQ(atomic_load(&produce_errors), 0);
    deadline = it_mono_ms() + WAIT_MS;
    uint64_t behind = 1;
    while (behind > 0 && it_mono_ms() < deadline) {
        watch_checkpoints(c);
        struct sluice_shard_lag *lag = NULL;
        size_t n = 0;
        if (sluice_group_lag(c, GROUP, STREAM, &lag, &n) == SL_OK) {
            behind = 0;
            for (size_t i = 0; i < n; i++) {
                behind += lag[i].records_behind;
            }
            free(lag);
        }
        it_sleep_ms(100);
    }
    CHECK_EQ(behind, 0);
    kill(members[m1].pid, SIGTERM);
    kill(members[m2].pid, SIGTERM);
    CHECK(member_reap(&members[m1], 1) == 0);
    CHECK(member_reap(&members[m2], 1) == 0);
    CHECK_EQ(ckpt_backwards, 0);

    /* The logs. */
    struct sluice_stream_info *info = NULL;
    CHECK(sluice_stream_describe(c, STREAM, &info) == SL_OK);
    uint64_t total = 0;
    for (uint32_t s = 0; s < SHARDS; s++) {
        tails[s] = info->shards[s].next_seq;
        total += tails[s];
        seen[s] = calloc(tails[s] + 1, 1);
        CHECK(seen[s] != NULL);
    }
    sluice_stream_info_free(info);
    CHECK_EQ(total, atomic_load(&produced));
    for (uint32_t i = 0; i < n_members; i++) {
        CHECK(parse_log(i) == 0);
    }
    CHECK_EQ(foreign_deliveries, 0);
    CHECK_EQ(order_errors, 0);
    uint64_t missing = 0, pause_max_us = 0, moved = 0, overlaps = 0;
    for (uint32_t s = 0; s < SHARDS; s++) {
        for (uint64_t q = 0; q < tails[s]; q++) {
            missing += seen[s][q] == 0;
        }
        qsort(runs[s], n_runs[s], sizeof(runs[s][0]), cmp_run);
        for (uint32_t k = 1; k < n_runs[s]; k++) {
            const struct run *a = &runs[s][k - 1], *b = &runs[s][k];
            if (a->last_d_us != 0 && a->last_d_us >= b->start_us) {
                /* A member that lost its session (a machine too loaded to let it beat, as the
                 * deliberate zombie) hands out what it fetched until it hears so - its
                 * commits are fenced and the new owner reads those records again, as in
                 * Kafka. A hand-over by revoke must never overlap. */
                int lost = a->end_kind == 'L';
                fprintf(stderr,
                        "  shard %u: member %u read at %" PRIu64 " after member %u got it at %" PRIu64
                        "%s\n",
                        s, a->member, a->last_d_us, b->member, b->start_us,
                        lost ? " (it had lost its session: allowed)" : "");
                overlaps += lost ? 0 : 1;
            }
            int zombie = a->end_us >= zombie_from_us && a->end_us <= zombie_to_us;
            if (a->end_kind == 'R' && b->start_us >= a->end_us && !zombie) {
                uint64_t pause = b->start_us - a->end_us;
                pause_max_us = pause > pause_max_us ? pause : pause_max_us;
                moved++;
            }
        }
        free(seen[s]);
    }
    fprintf(stderr,
            "  %" PRIu64 " records, %" PRIu64 " shard hand-overs by revoke, rebalance pause "
            "max %.1f ms\n",
            total, moved, (double)pause_max_us / 1000.0);
    CHECK_EQ(missing, 0);
    CHECK_EQ(overlaps, 0);
    CHECK(moved > 0);
    CHECK(pause_max_us < 1000000u * 3); /* the hand-over waits for no session timeout */
    sluice_client_free(c);
    it_broker_cleanup(&broker);
}

int main(int argc, char **argv)
{
    self_path = "/proc/self/exe";
    if (argc == 5 && strcmp(argv[1], "member") == 0) {
        return member_main(argv[2], argv[3], argv[4]);
    }
    int pre = it_preflight();
    if (pre != 0) {
        return pre;
    }
    RUN(group_balances_hands_over_and_fences);
    it_broker_cleanup(&broker);
    TEST_END();
}
