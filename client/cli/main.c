/* main.c - `sluice`, the command-line client: the command table, dispatch, help and the
 * process-wide bits (signals, clock).
 *
 *   sluice [connection options] COMMAND [options] [operands]
 *
 * COMMAND is a word (`produce`) or a group and a verb (`queue receive`). Connection options
 * (cli/conn.h) may come before the command or among its options; the command's options and
 * operands may come in any order ("--" ends the options). Each command is a `struct
 * cli_cmd` (cli/cli.h) in its group's file; one parser (cli/opt.h) reads every command's
 * table and writes every command's help, `sluice help COMMAND` and `COMMAND --help` alike.
 *
 * Data goes to stdout, status and errors to stderr; a live progress line is drawn on
 * stderr only when stderr is a terminal. Exit codes: 0 ok, 1 an error from the broker or
 * I/O, 2 bad usage. Built on the public API in client/sluice.h only (plus jansson for
 * JSON) and common/ (clock, assert).
 */
#include "client/cli/cli.h"

#include "client/cli/conn.h"
#include "common/assert.h"
#include "common/clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLI_EXITS_USUAL "exit codes: 0 ok, 1 error from the broker or I/O, 2 usage error\n"
#define CLI_WORDS_MAX   2 /* "queue receive" */

volatile sig_atomic_t cli_stop_requested;

struct cli_group {
    const char *name;
    const char *help;
};

static const struct cli_group groups[] = {
    {"stream", "A stream is N shards of records, each an append-only log; records with the same\n"
               "key go to the same shard, in order.\n"},
    {"queue",
     "A queue is a stream read by a queue group (competing consumers): each message goes to\n"
     "one receiver at a time for a visibility timeout; acknowledged messages are done,\n"
     "others become visible again. The group is \"default\" unless --group says.\n"},
    {"group", "A consumer group reads a stream with checkpoints; `sluice consume STREAM --group G`\n"
              "processes of one group split the stream's shards between them.\n"},
    {"topic", "A topic is a stream; a subscription is a queue group named SUB on it, read with\n"
              "  sluice queue receive TOPIC --group SUB\n"},
    {"target", "A push target has the broker POST a queue group's records to an HTTP endpoint\n"
               "(an unchanged AWS Lambda handler behind deploy/examples' adapter, a webhook).\n"},
    {"cluster", "Cluster mode: brokers coordinated by ZooKeeper (sluiced --cluster).\n"},
    {"bus", "An event bus BUS is the stream eb.BUS: PutEvents (or `sluice produce eb.BUS`)\n"
            "appends events; its rules deliver them.\n"},
    {"rule", "An event bus BUS is the stream eb.BUS; a rule matches its events' JSON against an\n"
             "EventBridge event pattern and delivers the matches to its targets.\n"},
    {"archive", "An archive keeps a bus's events so that a replay can deliver them again.\n"},
    {"replay", "A replay re-delivers a time range of an archive to the targets of a bus's rules,\n"
               "beside the live delivery.\n"},
};

static const struct cli_cmd *const commands[] = {
    &cli_cmd_stream_create,
    &cli_cmd_stream_list,
    &cli_cmd_stream_describe,
    &cli_cmd_stream_delete,
    &cli_cmd_stream_split,
    &cli_cmd_stream_merge,
    &cli_cmd_stream_reshard,
    &cli_cmd_produce,
    &cli_cmd_consume,
    &cli_cmd_lag,
    &cli_cmd_group_describe,
    &cli_cmd_group_reset,
    &cli_cmd_queue_create,
    &cli_cmd_queue_send,
    &cli_cmd_queue_receive,
    &cli_cmd_queue_ack,
    &cli_cmd_queue_nack,
    &cli_cmd_queue_stats,
    &cli_cmd_queue_purge,
    &cli_cmd_queue_redrive,
    &cli_cmd_queue_work,
    &cli_cmd_topic_create,
    &cli_cmd_topic_publish,
    &cli_cmd_topic_subscribe,
    &cli_cmd_topic_subscriptions,
    &cli_cmd_topic_unsubscribe,
    &cli_cmd_target_add,
    &cli_cmd_target_remove,
    &cli_cmd_target_list,
    &cli_cmd_cluster_status,
    &cli_cmd_cluster_reassign,
    &cli_cmd_cluster_move,
    &cli_cmd_bus_create,
    &cli_cmd_bus_list,
    &cli_cmd_bus_delete,
    &cli_cmd_rule_put,
    &cli_cmd_rule_list,
    &cli_cmd_rule_delete,
    &cli_cmd_archive_create,
    &cli_cmd_archive_list,
    &cli_cmd_archive_delete,
    &cli_cmd_replay_start,
    &cli_cmd_replay_describe,
    &cli_cmd_replay_cancel,
    &cli_cmd_replay_list,
};

#define COMMANDS_LEN (sizeof(commands) / sizeof(commands[0]))

/* ---- process ---- */

static void on_signal(int sig)
{
    (void)sig;
    cli_stop_requested = 1;
}

void cli_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* ---- lookup and help ---- */

static const struct cli_group *find_group(const char *name)
{
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
        if (strcmp(groups[i].name, name) == 0) {
            return &groups[i];
        }
    }
    return NULL;
}

/* The command named by words[0] (and words[1] when words[0] is a group); NULL if none. */
static const struct cli_cmd *find_cmd(const char *w0, const char *w1)
{
    char name[64];
    snprintf(name, sizeof(name), "%s%s%s", w0, w1 != NULL ? " " : "", w1 != NULL ? w1 : "");
    for (size_t i = 0; i < COMMANDS_LEN; i++) {
        if (strcmp(commands[i]->name, name) == 0) {
            return commands[i];
        }
    }
    return NULL;
}

static int is_help_word(const char *s)
{
    return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0 || strcmp(s, "help") == 0;
}

/* One line per command of the group (every command when `group` is NULL). */
static void list_commands(FILE *f, const char *group)
{
    size_t glen = group != NULL ? strlen(group) : 0;
    for (size_t i = 0; i < COMMANDS_LEN; i++) {
        const struct cli_cmd *c = commands[i];
        if (group != NULL && (strncmp(c->name, group, glen) != 0 || c->name[glen] != ' ')) {
            continue;
        }
        char left[80];
        snprintf(left, sizeof(left), "%s %s", c->name, c->operands);
        fprintf(f, "  %-32s %s\n", left, c->summary);
    }
}

static void conn_help(FILE *f)
{
    fprintf(f, "\nconnection options (before or after COMMAND):\n");
    cli_opt_help(f, cli_conn_table);
}

static void main_help(FILE *f)
{
    fprintf(f, "usage: sluice [connection options] COMMAND [options] [operands]\n\ncommands:\n");
    list_commands(f, NULL);
    conn_help(f);
    fprintf(f, "\n  sluice help COMMAND, sluice COMMAND --help   help for one command\n"
               "  options take their value as --opt VALUE or --opt=VALUE\n\n"
               "Data goes to stdout, status to stderr.\n" CLI_EXITS_USUAL);
}

static void group_help(FILE *f, const struct cli_group *g)
{
    fprintf(f, "usage: sluice %s COMMAND [options] [operands]\n\n%s\ncommands:\n", g->name,
            g->help);
    list_commands(f, g->name);
    fprintf(f, "\n  sluice help %s COMMAND   help for one command\n" CLI_EXITS_USUAL, g->name);
}

/* "usage: sluice queue receive NAME [options]" (no newline). */
static void usage_line(FILE *f, const struct cli_cmd *c)
{
    fprintf(f, "usage: sluice %s%s%s [options]", c->name, c->operands[0] != '\0' ? " " : "",
            c->operands);
}

static void cmd_help(FILE *f, const struct cli_cmd *c)
{
    usage_line(f, c);
    fprintf(f, "\n\n%s\n", c->summary);
    if (c->help != NULL) {
        fprintf(f, "\n%s", c->help);
    }
    for (size_t i = 0; i < CLI_CMD_SETS_MAX && c->sets[i].opts != NULL; i++) {
        fprintf(f, "\n%s:\n", c->sets[i].title != NULL ? c->sets[i].title : "options");
        cli_opt_help(f, c->sets[i].opts);
    }
    conn_help(f);
    fprintf(f, "\n%s", c->exits != NULL ? c->exits : CLI_EXITS_USUAL);
}

int cli_usage(const struct cli_cmd *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sluice%s%s: ", cmd != NULL ? " " : "", cmd != NULL ? cmd->name : "");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd != NULL) {
        fputc('\n', stderr);
        usage_line(stderr, cmd);
        fprintf(stderr, "   (more: sluice help %s)\n", cmd->name);
    } else {
        fprintf(stderr, "\nusage: sluice [connection options] COMMAND ...   (more: sluice help)\n");
    }
    return CLI_EXIT_USAGE;
}

int cli_call_seen(const struct cli_call *call, size_t set, const char *name)
{
    return cli_opt_seen(call->sets, set, call->res, name);
}

/* `sluice help [WORD [WORD]]`. */
static int help_cmd(int argc, char **argv)
{
    if (argc == 0) {
        main_help(stdout);
        return CLI_EXIT_OK;
    }
    const struct cli_group *g = find_group(argv[0]);
    const struct cli_cmd *c = find_cmd(argv[0], g != NULL && argc > 1 ? argv[1] : NULL);
    if (c != NULL && argc <= (g != NULL ? 2 : 1)) {
        cmd_help(stdout, c);
        return CLI_EXIT_OK;
    }
    if (g != NULL && argc == 1) {
        group_help(stdout, g);
        return CLI_EXIT_OK;
    }
    return cli_usage(NULL, "help: no command '%s%s%s'", argv[0], argc > 1 ? " " : "",
                     argc > 1 ? argv[1] : "");
}

/* ---- running a command ---- */

#define OPERANDS_ANY UINT32_MAX

/* How many operands the synopsis takes: each word one ("[X]": optional), "..." any more. */
static void operand_range(const char *synopsis, uint32_t *min, uint32_t *max)
{
    *min = 0;
    *max = 0;
    for (const char *w = synopsis; *w != '\0';) {
        size_t len = strcspn(w, " ");
        int optional = w[0] == '[';
        int many = memmem(w, len, "...", 3) != NULL;
        *min += optional ? 0u : 1u;
        *max = many || *max == OPERANDS_ANY ? OPERANDS_ANY : *max + 1u;
        w += len + strspn(w + len, " ");
    }
}

/* Parses argv (the command's options and operands, connection options among them) into a
 * fresh args struct and `conn`, then checks, connects and runs. */
static int run_cmd(const struct cli_cmd *cmd, int argc, char **argv, struct cli_conn_opts *conn)
{
    void *args = calloc(1, cmd->args_size > 0 ? cmd->args_size : 1);
    if (args == NULL) {
        fprintf(stderr, "sluice: out of memory\n");
        return CLI_EXIT_ERR;
    }
    if (cmd->init != NULL) {
        cmd->init(args);
    }
    struct cli_optset sets[CLI_CMD_SETS_MAX + 1];
    size_t n = 0;
    for (size_t i = 0; i < CLI_CMD_SETS_MAX && cmd->sets[i].opts != NULL; i++) {
        SL_ASSERT(cmd->sets[i].offset < cmd->args_size);
        sets[n++] = (struct cli_optset){cmd->sets[i].opts, (char *)args + cmd->sets[i].offset,
                                        cmd->sets[i].title};
    }
    sets[n++] = (struct cli_optset){cli_conn_table, conn, "connection options"};
    struct cli_opt_result res;
    char err[CLI_OPT_ERR_MAX];
    int ex = CLI_EXIT_OK;
    uint32_t min = 0, max = 0;
    operand_range(cmd->operands, &min, &max);
    if (cli_opt_parse(sets, n, CLI_OPT_PERMUTE, argc, argv, &res, err, sizeof(err)) != 0) {
        ex = cli_usage(cmd, "%s", err);
    } else if (res.help) {
        cmd_help(stdout, cmd);
    } else if ((uint32_t)res.pos_count < min) {
        ex = cli_usage(cmd, "expected %s", cmd->operands);
    } else if ((uint32_t)res.pos_count > max) {
        ex = cli_usage(cmd, "unexpected argument '%s'", argv[max]);
    } else {
        struct cli_call call = {cmd, args, argv, (uint32_t)res.pos_count, sets, &res};
        ex = cmd->check != NULL ? cmd->check(&call) : CLI_EXIT_OK;
        sluice_client *c = NULL;
        if (ex == CLI_EXIT_OK) {
            ex = cli_conn_connect(conn, &c);
        }
        if (ex == CLI_EXIT_OK) {
            ex = cmd->run(c, &call);
            sluice_client_free(c);
        }
    }
    free(args);
    return ex;
}

int main(int argc, char **argv)
{
    struct cli_conn_opts conn, scratch;
    cli_conn_defaults(&conn);
    cli_conn_defaults(&scratch);
    /* The options before COMMAND: parsed here only to find COMMAND; they are parsed for
     * real with the command's own (moved next to them below), the environment once. */
    struct cli_optset global = {cli_conn_table, &scratch, "connection options"};
    struct cli_opt_result res;
    char err[CLI_OPT_ERR_MAX];
    if (cli_opt_parse(&global, 1, CLI_OPT_STOP_AT_POSITIONAL, argc - 1, argv + 1, &res, err,
                      sizeof(err)) != 0) {
        return cli_usage(NULL, "%s", err);
    }
    if (res.help) {
        main_help(stdout);
        return CLI_EXIT_OK;
    }
    int at = 1 + res.rest; /* COMMAND */
    if (at >= argc) {
        return cli_usage(NULL, "missing command");
    }
    if (strcmp(argv[at], "help") == 0) {
        return help_cmd(argc - at - 1, argv + at + 1);
    }
    const struct cli_group *g = find_group(argv[at]);
    int words = g != NULL ? CLI_WORDS_MAX : 1;
    if (g != NULL && at + 1 >= argc) {
        return cli_usage(NULL, "missing %s subcommand (sluice help %s)", g->name, g->name);
    }
    if (g != NULL && is_help_word(argv[at + 1])) {
        group_help(stdout, g);
        return CLI_EXIT_OK;
    }
    const struct cli_cmd *cmd = find_cmd(argv[at], g != NULL ? argv[at + 1] : NULL);
    if (cmd == NULL && g != NULL) {
        return cli_usage(NULL, "unknown %s subcommand '%s' (sluice help %s)", g->name, argv[at + 1],
                         g->name);
    }
    if (cmd == NULL) {
        return cli_usage(NULL, "unknown command '%s'", argv[at]);
    }
    /* argv: prog, GLOBAL..., WORDS..., REST... -> prog, WORDS..., GLOBAL..., REST... */
    memmove(argv + 1 + words, argv + 1, (size_t)(at - 1) * sizeof(*argv));
    return run_cmd(cmd, argc - 1 - words, argv + 1 + words, &conn);
}
