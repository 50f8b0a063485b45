/* work.c - `sluice queue work`: runs a command per message, at most N at a time.
 *
 * One /bin/sh per message with posix_spawn (safe next to the client's I/O thread: the
 * child runs no allocator; its environment is built beforehand) and the body on stdin
 * from a memfd. The single loop thread reaps with waitpid(WNOHANG) and extends the leases
 * of running commands every visibility/2, so at most `concurrency` messages are leased at
 * a time. Exit 0 acks; anything else nacks with exponential backoff. SIGTERM or Ctrl-C
 * stops receiving, waits for the running commands and gives back what was not started.
 */
#include "client/cli/cli.h"
#include "client/cli/group.h"
#include "client/cli/output.h"
#include "common/clock.h"

#include <errno.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORK_CONCURRENCY_MAX 1024u
#define WORK_BACKOFF_MAX_MS  300000u /* nack delay cap: 5 minutes */
#define WORK_TICK_MS         50u     /* reap/extend period while every slot is busy */
#define WORK_POLL_BUSY_MS    250u    /* receive long-poll while commands run (reap promptly) */
#define WORK_POLL_IDLE_MS    1000u   /* receive long-poll while nothing runs */
#define WORK_PROGRESS_MS     1000u   /* progress line period when stderr is not a terminal */
#define WORK_RETRIES_MAX     60u     /* receive retries, 1 s apart, across a broker restart */
#define WORK_VISIBILITY_MS   30000u  /* when the group reports none */

struct work_slot {
    pid_t pid; /* 0 = free */
    char *receipt;
    uint32_t delivery_count;
    uint64_t extend_at_ms;
};

struct work_args {
    const char *group;
    const char *stream;
    const char *exec;
    uint32_t concurrency;
    uint32_t visibility_ms;
    struct work_slot *slots;
    uint32_t running;
    uint64_t done, failed;
    uint64_t progress_ms;      /* when the progress line was last printed */
    uint64_t progress_settled; /* done + failed it showed */
    int tty;
};

static uint32_t work_backoff_ms(uint32_t delivery_count)
{
    uint32_t shift = delivery_count > 0 ? delivery_count - 1 : 0;
    if (shift >= 19) { /* 2^19 s is far past the cap */
        return WORK_BACKOFF_MAX_MS;
    }
    uint64_t ms = ((uint64_t)1 << shift) * 1000u;
    return ms < WORK_BACKOFF_MAX_MS ? (uint32_t)ms : WORK_BACKOFF_MAX_MS;
}

static int work_env_name_skip(const char *e)
{
    static const char *const ours[] = {"SLUICE_MESSAGE_ID=", "SLUICE_SHARD=", "SLUICE_SEQ=",
                                       "SLUICE_DELIVERY_COUNT=", "SLUICE_ATTR_"};
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
        if (strncmp(e, ours[i], strlen(ours[i])) == 0) {
            return 1;
        }
    }
    return 0;
}

static void work_env_free(char **envp, size_t from)
{
    for (size_t i = from; envp != NULL && envp[i] != NULL; i++) {
        free(envp[i]);
    }
    free(envp);
}

/* The child's environment: ours minus SLUICE_* names we set, plus the message's. Built
 * before posix_spawn so the child runs no allocator. *ours_from = first owned entry. */
static char **work_env(const struct sluice_message *m, size_t *ours_from)
{
    extern char **environ;
    size_t n = 0;
    while (environ[n] != NULL) {
        n++;
    }
    char **envp = calloc(n + 4 + m->attr_count + 1, sizeof(*envp));
    if (envp == NULL) {
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!work_env_name_skip(environ[i])) {
            envp[k++] = environ[i];
        }
    }
    *ours_from = k;
    int bad = asprintf(&envp[k++], "SLUICE_MESSAGE_ID=%s", m->receipt) < 0;
    bad |= asprintf(&envp[k++], "SLUICE_SHARD=%u", m->shard) < 0;
    bad |= asprintf(&envp[k++], "SLUICE_SEQ=%" PRIu64, m->seq) < 0;
    bad |= asprintf(&envp[k++], "SLUICE_DELIVERY_COUNT=%u", m->delivery_count) < 0;
    for (uint32_t i = 0; i < m->attr_count && !bad; i++) {
        const struct sluice_attr *a = &m->attrs[i];
        bad |= asprintf(&envp[k], "SLUICE_ATTR_%.*s=%.*s", (int)a->key_len, a->key,
                        (int)a->value_len, a->value) < 0;
        for (char *p = envp[k] + strlen("SLUICE_ATTR_"); !bad && *p != '='; p++) {
            char ch = *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
            *p = (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ? ch : '_';
        }
        k++;
    }
    if (bad) {
        work_env_free(envp, *ours_from);
        return NULL;
    }
    return envp;
}

/* Starts CMD for one message in `slot`. Returns 0, or -1 (reason printed). */
static int work_spawn(struct work_args *w, struct work_slot *slot, const struct sluice_message *m)
{
    int fd = memfd_create("sluice-message", MFD_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "sluice: memfd_create: %s\n", strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < m->value_len) {
        ssize_t n = write(fd, m->value + off, m->value_len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            fprintf(stderr, "sluice: writing message body: %s\n", strerror(errno));
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    lseek(fd, 0, SEEK_SET);
    size_t ours = 0;
    char **envp = work_env(m, &ours);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, STDIN_FILENO);
    char *argv[] = {"sh", "-c", (char *)w->exec, NULL};
    pid_t pid = 0;
    int err = envp == NULL ? ENOMEM : posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    work_env_free(envp, ours);
    close(fd);
    if (err != 0) {
        fprintf(stderr, "sluice: starting /bin/sh: %s\n", strerror(err));
        return -1;
    }
    slot->receipt = strdup(m->receipt);
    slot->pid = pid;
    slot->delivery_count = m->delivery_count;
    slot->extend_at_ms = sl_clock_mono_ms() + w->visibility_ms / 2;
    w->running++;
    return 0;
}

/* Nacks one receipt with `delay_ms`; returns EXIT_*. A lease that already ended is only
 * reported (the broker redelivers it anyway). */
static int work_nack(sluice_client *c, const struct work_args *w, const char *receipt,
                     uint32_t delay_ms)
{
    int result = SL_OK;
    int rc = sluice_queue_nack(c, w->stream, w->group, &receipt, 1, delay_ms, &result);
    if (rc == SL_ENOTFOUND) {
        fprintf(stderr, "sluice: nack %s: lease already ended\n", receipt);
        return CLI_EXIT_OK;
    }
    if (rc != SL_OK) { /* not fatal: the lease ends and the broker redelivers */
        cli_broker_error("queue nack", rc);
    }
    return CLI_EXIT_OK;
}

static int work_finish(sluice_client *c, struct work_args *w, struct work_slot *s, int status)
{
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    int ex = CLI_EXIT_OK;
    if (ok) {
        const char *r = s->receipt;
        int rc = sluice_queue_ack(c, w->stream, w->group, &r, 1, NULL);
        if (rc == SL_ENOTFOUND) {
            fprintf(stderr, "sluice: ack %s: lease ended (the message may run again)\n", r);
        } else if (rc != SL_OK) { /* not fatal: the message will run again */
            cli_broker_error("queue ack", rc);
        }
        w->done++;
    } else {
        ex = work_nack(c, w, s->receipt, work_backoff_ms(s->delivery_count));
        w->failed++;
    }
    free(s->receipt);
    memset(s, 0, sizeof(*s));
    w->running--;
    return ex;
}

/* Reaps finished commands (ack or nack) and extends the leases that are due. */
static int work_tend(sluice_client *c, struct work_args *w)
{
    int ex = CLI_EXIT_OK;
    uint64_t now = sl_clock_mono_ms();
    for (uint32_t i = 0; i < w->concurrency && ex == CLI_EXIT_OK; i++) {
        struct work_slot *s = &w->slots[i];
        int status = 0;
        pid_t r = s->pid != 0 ? waitpid(s->pid, &status, WNOHANG) : 0;
        if (r == s->pid && r != 0) {
            ex = work_finish(c, w, s, status);
        } else if (s->pid != 0 && now >= s->extend_at_ms) {
            const char *rc_receipt = s->receipt;
            int rc =
                sluice_queue_extend(c, w->stream, w->group, &rc_receipt, 1, w->visibility_ms, NULL);
            if (rc == SL_ENOTFOUND) {
                fprintf(stderr, "sluice: extend %s: lease already ended\n", s->receipt);
            } else if (rc != SL_OK) { /* not fatal: try again at the next period */
                cli_broker_error("queue extend", rc);
            }
            s->extend_at_ms = now + w->visibility_ms / 2;
        }
    }
    uint64_t settled = w->done + w->failed;
    if (w->tty || (now - w->progress_ms >= WORK_PROGRESS_MS && settled != w->progress_settled)) {
        w->progress_ms = now;
        w->progress_settled = settled;
        fprintf(stderr, "%sdone %" PRIu64 ", failed %" PRIu64 ", running %u%s", w->tty ? "\r" : "",
                w->done, w->failed, w->running, w->tty ? "   " : "\n");
    }
    return ex;
}

/* Starts CMD for each received message; after a stop request, gives the rest back. */
static int work_start_all(sluice_client *c, struct work_args *w, struct sluice_message *msgs,
                          size_t n)
{
    int ex = CLI_EXIT_OK;
    uint32_t slot = 0;
    for (size_t i = 0; i < n && ex == CLI_EXIT_OK; i++) {
        while (slot < w->concurrency && w->slots[slot].pid != 0) {
            slot++;
        }
        if (cli_stop_requested || slot == w->concurrency) { /* never more than free slots asked */
            ex = work_nack(c, w, msgs[i].receipt, 0);
        } else if (work_spawn(w, &w->slots[slot], &msgs[i]) != 0) {
            w->failed++;
            ex = work_nack(c, w, msgs[i].receipt, work_backoff_ms(msgs[i].delivery_count));
        }
    }
    return ex;
}

static int work_loop(sluice_client *c, struct work_args *w)
{
    int ex = CLI_EXIT_OK;
    uint32_t retries = 0; /* consecutive receives that failed transiently */
    while (ex == CLI_EXIT_OK && !cli_stop_requested) {
        ex = work_tend(c, w);
        uint32_t free_slots = w->concurrency - w->running;
        if (ex != CLI_EXIT_OK || free_slots == 0) {
            if (free_slots == 0) {
                usleep(WORK_TICK_MS * 1000u);
            }
            continue;
        }
        struct sluice_message *msgs = NULL;
        size_t n = 0;
        uint32_t wait = w->running > 0 ? WORK_POLL_BUSY_MS : WORK_POLL_IDLE_MS;
        uint32_t max =
            free_slots < SLUICE_QUEUE_RECEIVE_MAX ? free_slots : SLUICE_QUEUE_RECEIVE_MAX;
        int rc =
            sluice_queue_receive(c, w->stream, w->group, max, wait, w->visibility_ms, &msgs, &n);
        if ((rc == SL_ECLOSED || rc == SL_EAGAIN) && retries++ < WORK_RETRIES_MAX) {
            fprintf(stderr, "sluice: queue receive: %s; retrying\n", sluice_last_error());
            sleep(1);
            continue;
        }
        if (rc != SL_OK) {
            ex = cli_broker_error("queue receive", rc);
            break;
        }
        retries = 0;
        ex = work_start_all(c, w, msgs, n);
        sluice_messages_free(msgs, n);
    }
    /* Stopping: no new commands; wait for the running ones and settle them. */
    while (w->running > 0) {
        int e = work_tend(c, w);
        ex = ex != CLI_EXIT_OK ? ex : e;
        if (w->running > 0) {
            usleep(WORK_TICK_MS * 1000u);
        }
    }
    return ex;
}

static int run_work(sluice_client *c, const struct cli_call *call)
{
    struct work_args *w = call->args;
    w->stream = call->operands[0];
    if (w->visibility_ms == 0) {
        struct sluice_queue_stats s;
        int rc = sluice_queue_stats(c, w->stream, w->group, &s);
        w->visibility_ms =
            s.visibility_timeout_ms != 0 ? s.visibility_timeout_ms : WORK_VISIBILITY_MS;
        sluice_queue_stats_fini(&s);
        if (rc != SL_OK) {
            return cli_broker_error("queue work", rc);
        }
    }
    w->slots = calloc(w->concurrency, sizeof(*w->slots));
    if (w->slots == NULL) {
        fprintf(stderr, "sluice: out of memory\n");
        return CLI_EXIT_ERR;
    }
    w->tty = isatty(STDERR_FILENO);
    cli_signals_install();
    int ex = work_loop(c, w);
    fprintf(stderr, "%sdone %" PRIu64 ", failed %" PRIu64 "; stopped\n", w->tty ? "\r\033[K" : "",
            w->done, w->failed);
    free(w->slots);
    return ex;
}

static const struct cli_opt work_opts[] = {
    CLI_GROUP_OPT(struct work_args, group),
    {.name = "exec",
     .kind = CLI_OPT_STRING,
     .offset = offsetof(struct work_args, exec),
     .value_name = "CMD",
     .help = "the command, run with /bin/sh -c",
     .min = 1,
     .flags = CLI_OPT_REQUIRED},
    {.name = "concurrency",
     .kind = CLI_OPT_U32,
     .offset = offsetof(struct work_args, concurrency),
     .value_name = "N",
     .help = "commands running at most (default 1)",
     .min = 1,
     .max = WORK_CONCURRENCY_MAX},
    {.name = "visibility",
     .kind = CLI_OPT_DURATION,
     .offset = offsetof(struct work_args, visibility_ms),
     .value_name = "S",
     .help = "lease per message, extended every S/2 while CMD runs\n(default: the group's)",
     .min = 1000},
    {.name = NULL},
};

static void init_work(void *args)
{
    struct work_args *w = args;
    w->group = CLI_DEFAULT_GROUP;
    w->concurrency = 1;
}

const struct cli_cmd cli_cmd_queue_work = {
    .name = "queue work",
    .operands = "NAME",
    .summary = "run a command per message (--exec CMD)",
    .help =
        "Receives messages and runs CMD (with /bin/sh -c) once per message, at most N at a time\n"
        "(default 1). CMD gets the message body on stdin and in its environment:\n"
        "  SLUICE_MESSAGE_ID (the receipt), SLUICE_SHARD, SLUICE_SEQ, SLUICE_DELIVERY_COUNT,\n"
        "  SLUICE_ATTR_<KEY> per attribute (KEY upper-cased, other than [A-Z0-9] becomes _).\n"
        "Exit status 0 acknowledges the message; anything else nacks it, visible again after\n"
        "min(2^(delivery_count-1), 300) seconds. While CMD runs its lease is extended every\n"
        "visibility/2 (--visibility S seconds; default: the group's). SIGTERM or Ctrl-C stops\n"
        "receiving, waits for running commands, and gives back messages not started. A running\n"
        "done/failed count goes to stderr.\n",
    .exits = "exit codes: 0 stopped cleanly, 1 error from the broker or I/O, 2 usage error\n",
    .sets = {{work_opts, 0, "options"}},
    .args_size = sizeof(struct work_args),
    .init = init_work,
    .run = run_work,
};
