/* cluster_move.c - `sluice cluster reassign` (one shard to a replica list, or --cancel: its
 * move undone) and `sluice cluster move` (every shard a broker holds, onto another broker):
 * ReassignShard requests (sluice_cluster_reassign, _cancel), then, unless --no-wait,
 * Metadata polled until every shard moved (docs/REPLICATION.md, "Reassignment"). */
#include "client/cli/cli.h"
#include "client/cli/output.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLI_MOVE_POLL_MS     500u /* Metadata is asked this often while waiting */
#define CLI_MOVE_STREAMS_MAX 256u /* streams `cluster move` looks through at most */

struct id_list {
    uint32_t n;
    int32_t v[SLUICE_REPLICAS_MAX];
};

struct move_args {
    uint32_t shard;
    struct id_list replicas;
    int cancel;
    uint32_t from, to;
    const char *stream;
    int no_wait;
    uint32_t timeout_ms;
};

static void move_init(void *p)
{
    struct move_args *a = p;
    a->timeout_ms = 300000;
}

static int parse_ids(const char *s, void *dst, char *why, size_t cap)
{
    struct id_list *l = dst;
    l->n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > INT32_MAX || (*end != ',' && *end != '\0')) {
            snprintf(why, cap, "'%s' is not a list of broker ids like 1,2,4", s);
            return -1;
        }
        if (l->n == SLUICE_REPLICAS_MAX) {
            snprintf(why, cap, "at most %u replicas", SLUICE_REPLICAS_MAX);
            return -1;
        }
        l->v[l->n++] = (int32_t)v;
        if (*end == '\0') {
            return 0;
        }
        p = end + 1;
    }
}

#define WAIT_OPTS                                                                                  \
    {.name = "no-wait",                                                                            \
     .kind = CLI_OPT_FLAG,                                                                         \
     .offset = offsetof(struct move_args, no_wait),                                                \
     .help = "return once the request is accepted (default: wait until the move ends)"},           \
    {                                                                                              \
        .name = "timeout", .kind = CLI_OPT_DURATION,                                               \
        .offset = offsetof(struct move_args, timeout_ms), .value_name = "T",                       \
        .help = "give up waiting after T (default 300 s; the move goes on)", .min = 1              \
    }

static const struct cli_opt reassign_opts[] = {
    {.name = "shard",
     .kind = CLI_OPT_U32,
     .offset = offsetof(struct move_args, shard),
     .value_name = "K",
     .help = "the shard to move",
     .flags = CLI_OPT_REQUIRED},
    {.name = "replicas",
     .kind = CLI_OPT_CUSTOM,
     .offset = offsetof(struct move_args, replicas),
     .value_name = "IDS",
     .help = "the new replica set, broker ids (the first is the preferred leader), e.g. 1,2,4",
     .parse = parse_ids},
    {.name = "cancel",
     .kind = CLI_OPT_FLAG,
     .offset = offsetof(struct move_args, cancel),
     .help = "cancel the shard's move in progress instead: back to the replicas before it"},
    WAIT_OPTS,
    {.name = NULL},
};

static const struct cli_opt move_opts[] = {
    {.name = "from-broker",
     .kind = CLI_OPT_U32,
     .offset = offsetof(struct move_args, from),
     .value_name = "A",
     .help = "the broker whose replicas move",
     .max = INT32_MAX,
     .flags = CLI_OPT_REQUIRED},
    {.name = "to-broker",
     .kind = CLI_OPT_U32,
     .offset = offsetof(struct move_args, to),
     .value_name = "B",
     .help = "the broker that takes them",
     .max = INT32_MAX,
     .flags = CLI_OPT_REQUIRED},
    {.name = "stream",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct move_args, stream),
     .value_name = "S",
     .help = "move the shards of S only (default: of every stream, the first 256)",
     .min = 1,
     .max = 128},
    WAIT_OPTS,
    {.name = NULL},
};

/* One shard asked to move. */
struct job {
    const char *stream; /* borrowed from the stream list or argv */
    uint32_t shard;
    struct id_list target;
    int done;
};

static void ids_fmt(const int32_t *ids, uint32_t n, char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < n && off < cap; i++) {
        off += (size_t)snprintf(buf + off, cap - off, "%s%d", i > 0 ? "," : "", (int)ids[i]);
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Whether `r` shows the move to `t` ended: no target, replicas exactly t. */
static int moved(const struct sluice_shard_route *r, const struct id_list *t)
{
    if (r->n_target != 0 || r->n_replicas != t->n) {
        return 0;
    }
    return memcmp(r->replicas, t->v, t->n * sizeof(t->v[0])) == 0;
}

/* Polls Metadata until every job's shard moved, the timeout, or a signal. */
static int wait_jobs(sluice_client *c, struct job *jobs, size_t n, uint32_t timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;
    size_t left = n;
    while (left > 0) {
        for (size_t i = 0; i < n; i++) {
            if (jobs[i].done) {
                continue;
            }
            const char *name = jobs[i].stream;
            struct sluice_metadata *m = NULL;
            if (sluice_cluster_metadata(c, &name, 1, &m) != SLUICE_OK) {
                continue; /* (a broker going away mid-move: asked again) */
            }
            const struct sluice_stream_route *sr = &m->streams[0];
            for (size_t j = 0; j < sr->n_shards; j++) {
                const struct sluice_shard_route *r = &sr->shards[j];
                if (r->shard == jobs[i].shard && moved(r, &jobs[i].target)) {
                    char ids[SLUICE_REPLICAS_MAX * 12];
                    ids_fmt(r->replicas, r->n_replicas, ids, sizeof(ids));
                    printf("%s shard %" PRIu32 ": moved: replicas %s, leader %d (epoch %d)\n", name,
                           r->shard, ids, (int)r->leader, (int)r->leader_epoch);
                    fflush(stdout);
                    jobs[i].done = 1;
                    left--;
                }
            }
            sluice_metadata_free(m);
        }
        if (left == 0) {
            break;
        }
        if (cli_stop_requested || now_ms() >= deadline) {
            fprintf(stderr,
                    "sluice: %zu shard%s still moving after %u ms (the move goes on: "
                    "sluice cluster status shows it)\n",
                    left, left == 1 ? "" : "s", timeout_ms);
            return CLI_EXIT_ERR;
        }
        struct timespec ts = {0, (long)CLI_MOVE_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return CLI_EXIT_OK;
}

/* Sends one request and says so; SLUICE_OK or the error (printed). */
static int ask(sluice_client *c, const struct job *j, const struct sluice_shard_route *from)
{
    char to[SLUICE_REPLICAS_MAX * 12], was[SLUICE_REPLICAS_MAX * 12];
    ids_fmt(j->target.v, j->target.n, to, sizeof(to));
    int rc = sluice_cluster_reassign(c, j->stream, j->shard, j->target.v, j->target.n);
    if (rc != SLUICE_OK) {
        char what[300];
        snprintf(what, sizeof(what), "cluster reassign %s shard %" PRIu32 " to %s", j->stream,
                 j->shard, to);
        cli_broker_error(what, rc);
        return rc;
    }
    if (from != NULL) {
        ids_fmt(from->replicas, from->n_replicas, was, sizeof(was));
        printf("%s shard %" PRIu32 ": moving %s -> %s\n", j->stream, j->shard, was, to);
    } else {
        printf("%s shard %" PRIu32 ": moving to %s\n", j->stream, j->shard, to);
    }
    fflush(stdout);
    return SLUICE_OK;
}

static int check_reassign(const struct cli_call *call)
{
    const struct move_args *a = call->args;
    if ((a->replicas.n > 0) == (a->cancel != 0)) {
        return cli_usage(call->cmd, "name the new replicas (--replicas IDS) or --cancel, "
                                    "one of them");
    }
    return CLI_EXIT_OK;
}

/* The route of shard `shard` of `stream` as one broker answers it: SLUICE_OK and *out. */
static int route_of(sluice_client *c, const char *stream, uint32_t shard,
                    struct sluice_shard_route *out)
{
    struct sluice_metadata *m = NULL;
    int rc = sluice_cluster_metadata(c, &stream, 1, &m);
    if (rc != SLUICE_OK) {
        return rc;
    }
    rc = SLUICE_ENOTFOUND;
    const struct sluice_stream_route *sr = &m->streams[0];
    for (size_t j = 0; j < sr->n_shards; j++) {
        if (sr->shards[j].shard == shard) {
            *out = sr->shards[j];
            rc = SLUICE_OK;
        }
    }
    sluice_metadata_free(m);
    return rc;
}

/* `cluster reassign --cancel`: the cancel asked, then (unless --no-wait) Metadata polled until
 * the move is gone; the outcome is said: back to the old replicas, or the move had ended
 * (or the controller refused: it goes on until it ends). */
static int run_cancel(sluice_client *c, const struct move_args *a, const char *stream)
{
    struct sluice_shard_route before;
    if (route_of(c, stream, a->shard, &before) != SLUICE_OK) {
        before.n_target = 0; /* (the broker's answer to the cancel says what is wrong) */
    }
    int rc = sluice_cluster_reassign_cancel(c, stream, a->shard);
    if (rc != SLUICE_OK) {
        char what[300];
        snprintf(what, sizeof(what), "cluster reassign %s --shard %" PRIu32 " --cancel", stream,
                 a->shard);
        return cli_broker_error(what, rc);
    }
    printf("%s shard %" PRIu32 ": cancelling its move\n", stream, a->shard);
    fflush(stdout);
    if (a->no_wait) {
        return CLI_EXIT_OK;
    }
    struct id_list target = {.n = before.n_target};
    memcpy(target.v, before.target, before.n_target * sizeof(target.v[0]));
    uint64_t deadline = now_ms() + a->timeout_ms;
    for (;;) {
        struct sluice_shard_route r;
        if (route_of(c, stream, a->shard, &r) == SLUICE_OK && r.n_target == 0) {
            char ids[SLUICE_REPLICAS_MAX * 12];
            ids_fmt(r.replicas, r.n_replicas, ids, sizeof(ids));
            bool ended = target.n > 0 && moved(&r, &target);
            printf("%s shard %" PRIu32 ": %s: replicas %s, leader %d (epoch %d)\n", stream,
                   a->shard, ended ? "the move ended before the cancel" : "cancelled", ids,
                   (int)r.leader, (int)r.leader_epoch);
            return ended ? CLI_EXIT_ERR : CLI_EXIT_OK;
        }
        if (cli_stop_requested || now_ms() >= deadline) {
            fprintf(stderr,
                    "sluice: %s shard %" PRIu32 " still moving after %u ms: the controller "
                    "has not applied the cancel, or refused it (no replica from before the "
                    "move alive and in sync by then: the move goes on)\n",
                    stream, a->shard, a->timeout_ms);
            return CLI_EXIT_ERR;
        }
        struct timespec ts = {0, (long)CLI_MOVE_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int run_reassign(sluice_client *c, const struct cli_call *call)
{
    const struct move_args *a = call->args;
    if (a->cancel) {
        return run_cancel(c, a, call->operands[0]);
    }
    struct job j = {.stream = call->operands[0], .shard = a->shard, .target = a->replicas};
    if (ask(c, &j, NULL) != SLUICE_OK) {
        return CLI_EXIT_ERR;
    }
    return a->no_wait ? CLI_EXIT_OK : wait_jobs(c, &j, 1, a->timeout_ms);
}

/* The shards of the named streams whose replicas include `from`: each asked to move to the
 * same list with `to` in its place (the order kept, so a preferred leader stays first). */
static int move_streams(sluice_client *c, const struct move_args *a, const char *const *names,
                        size_t n_names, struct job **jobs, size_t *n_jobs, size_t *cap, int *failed)
{
    for (size_t k = 0; k < n_names; k += SLUICE_METADATA_STREAMS) {
        size_t cnt = n_names - k < SLUICE_METADATA_STREAMS ? n_names - k : SLUICE_METADATA_STREAMS;
        struct sluice_metadata *m = NULL;
        int rc = sluice_cluster_metadata(c, names + k, cnt, &m);
        if (rc != SLUICE_OK) {
            return cli_broker_error("cluster move (metadata)", rc);
        }
        for (size_t i = 0; i < m->n_streams; i++) {
            const struct sluice_stream_route *sr = &m->streams[i];
            for (size_t s = 0; s < sr->n_shards; s++) {
                const struct sluice_shard_route *r = &sr->shards[s];
                int has_from = 0, has_to = 0;
                for (uint32_t x = 0; x < r->n_replicas; x++) {
                    has_from |= r->replicas[x] == (int32_t)a->from;
                    has_to |= r->replicas[x] == (int32_t)a->to;
                }
                if (!has_from || (r->leader_epoch == 0 && r->n_replicas == 1)) {
                    continue; /* (one replica at epoch 0: a local stream, not replicated; a
                               * cluster stream of one replica: use cluster reassign) */
                }
                if (has_to || r->n_target > 0) {
                    printf("%s shard %" PRIu32 ": skipped (%s)\n", names[k + i], r->shard,
                           has_to ? "the new broker holds it already" : "a move is in progress");
                    continue;
                }
                if (*n_jobs == *cap) {
                    size_t nc = *cap ? *cap * 2 : 64;
                    struct job *v = realloc(*jobs, nc * sizeof(*v));
                    if (v == NULL) {
                        sluice_metadata_free(m);
                        fprintf(stderr, "sluice: out of memory\n");
                        return CLI_EXIT_ERR;
                    }
                    *jobs = v;
                    *cap = nc;
                }
                struct job *j = &(*jobs)[*n_jobs];
                *j = (struct job){.stream = names[k + i], .shard = r->shard};
                j->target.n = r->n_replicas;
                for (uint32_t x = 0; x < r->n_replicas; x++) {
                    j->target.v[x] =
                        r->replicas[x] == (int32_t)a->from ? (int32_t)a->to : r->replicas[x];
                }
                if (ask(c, j, r) == SLUICE_OK) {
                    (*n_jobs)++;
                } else {
                    *failed = 1;
                }
            }
        }
        sluice_metadata_free(m);
    }
    return CLI_EXIT_OK;
}

static int run_move(sluice_client *c, const struct cli_call *call)
{
    const struct move_args *a = call->args;
    if (a->from == a->to) {
        return cli_usage(call->cmd, "--from-broker and --to-broker name the same broker");
    }
    struct sluice_stream_info *list = NULL;
    size_t n = 0;
    const char *one[1] = {a->stream};
    const char **names = one;
    if (a->stream == NULL) {
        int rc = sluice_stream_list(c, &list, &n);
        if (rc != SLUICE_OK) {
            return cli_broker_error("cluster move (stream list)", rc);
        }
        n = n < CLI_MOVE_STREAMS_MAX ? n : CLI_MOVE_STREAMS_MAX;
        names = calloc(n + 1, sizeof(*names));
        if (names == NULL) {
            sluice_stream_list_free(list, n);
            fprintf(stderr, "sluice: out of memory\n");
            return CLI_EXIT_ERR;
        }
        for (size_t i = 0; i < n; i++) {
            names[i] = list[i].name;
        }
    } else {
        n = 1;
    }
    struct job *jobs = NULL;
    size_t n_jobs = 0, cap = 0;
    int failed = 0;
    int rc = move_streams(c, a, names, n, &jobs, &n_jobs, &cap, &failed);
    if (rc == CLI_EXIT_OK && n_jobs == 0 && !failed) {
        printf("broker %" PRIu32 " holds no replica to move\n", a->from);
    }
    if (rc == CLI_EXIT_OK && !a->no_wait && n_jobs > 0) {
        rc = wait_jobs(c, jobs, n_jobs, a->timeout_ms);
    }
    free(jobs);
    if (names != one) {
        free(names);
    }
    sluice_stream_list_free(list, n);
    return rc != CLI_EXIT_OK || failed ? CLI_EXIT_ERR : CLI_EXIT_OK;
}

const struct cli_cmd cli_cmd_cluster_reassign = {
    .name = "cluster reassign",
    .operands = "STREAM",
    .summary = "move a shard's replicas to a new set of brokers",
    .help = "Asks the controller to move shard K of STREAM to the brokers IDS: the new ones\n"
            "copy the shard from its leader and join the in-sync replicas when caught up;\n"
            "then the shard switches to exactly IDS (a leader not among them hands over to\n"
            "the first of IDS, a new epoch) and the brokers left out stop serving it.\n"
            "Producers and consumers go on throughout (a hand-over is a failover: clients\n"
            "retry on the new leader). Waits until the move ended unless --no-wait;\n"
            "`sluice cluster status` shows a move in progress (`moving to ...`).\n"
            "--cancel undoes the move in progress (one whose new broker is lost for good\n"
            "never ends): the shard goes back to its replicas before the move; a leader\n"
            "among the new ones hands over to an old one in sync. Refused when no old\n"
            "replica is alive and in sync (they may miss acknowledged records): the move\n"
            "goes on. Waits until the move is gone unless --no-wait.\n",
    .sets = {{reassign_opts, 0, "options"}},
    .args_size = sizeof(struct move_args),
    .init = move_init,
    .check = check_reassign,
    .run = run_reassign,
};

const struct cli_cmd cli_cmd_cluster_move = {
    .name = "cluster move",
    .operands = "",
    .summary = "move every replica a broker holds onto another broker",
    .help = "For every shard of --stream S (or of every stream) with a replica on broker A,\n"
            "asks to move it to the same replicas with B in A's place (as `cluster\n"
            "reassign`), then waits until all moved unless --no-wait. Shards B holds already,\n"
            "or moving already, are skipped (and said). To empty a broker before retiring\n"
            "it, or to fill a new one.\n",
    .sets = {{move_opts, 0, "options"}},
    .args_size = sizeof(struct move_args),
    .init = move_init,
    .run = run_move,
};
