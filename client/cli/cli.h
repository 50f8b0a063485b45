/* cli.h - a `sluice` command as the dispatcher (cli/main.c) sees it, and what it lends the
 * command files: exit codes, usage errors, the stop flag, the monotonic clock.
 *
 * A command is data: its name, operands, help text, option tables (cli/opt.h) and the
 * size of the struct they fill. The dispatcher parses argv with the command's tables plus
 * the connection table (cli/conn.h), checks the operand count, calls `check` (usage rules
 * no table can say), connects, calls `run`, and disconnects. Help and errors come from the
 * same tables. Commands run on the main thread only.
 */
#ifndef SL_CLI_CLI_H
#define SL_CLI_CLI_H

#include "client/cli/opt.h"
#include "client/sluice.h"
#include "common/error.h" /* the CLI compares codes with SL_E* */

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define CLI_EXIT_OK    0
#define CLI_EXIT_ERR   1 /* an error from the broker or I/O */
#define CLI_EXIT_USAGE 2

#define CLI_CMD_SETS_MAX 2u /* option tables of one command (plus the connection table) */

struct cli_call;

struct cli_cmd_opts {
    const struct cli_opt *opts; /* NULL: no table */
    size_t offset;              /* of the struct it fills, in the command's args */
    const char *title;          /* heading in help */
};

struct cli_cmd {
    const char *name;     /* "queue receive": one or two words */
    const char *operands; /* "NAME RECEIPT...|-": usage lines, and how many operands: one
                           * per word, any number from a word with "...", "[X]" optional */
    const char *summary;  /* one line, in the command list */
    const char *help;     /* text between the usage line and the options; NULL: none */
    const char *exits;    /* the exit-codes line when not the usual one; NULL: usual */
    struct cli_cmd_opts sets[CLI_CMD_SETS_MAX];
    size_t args_size;         /* the struct the tables fill, zeroed, then `init` */
    void (*init)(void *args); /* defaults; NULL: all zero */
    /* Checks what the tables cannot say (options that exclude each other) before anything
     * connects. Returns CLI_EXIT_OK or cli_usage(...). NULL: nothing to check. */
    int (*check)(const struct cli_call *call);
    /* Does the work on a connected client (borrowed). Returns CLI_EXIT_*. */
    int (*run)(sluice_client *c, const struct cli_call *call);
};

/* One run of a command: its parsed arguments. Everything borrowed for the call. */
struct cli_call {
    const struct cli_cmd *cmd;
    void *args;      /* the struct its tables filled (cmd->args_size bytes) */
    char **operands; /* the positional arguments, in order */
    uint32_t operands_len;
    const struct cli_optset *sets; /* as parsed: the command's tables, then the connection's */
    const struct cli_opt_result *res;
};

/* Every command, one per file group (cli/stream.c, produce.c, consume.c, queue.c, work.c,
 * topic.c). */
extern const struct cli_cmd cli_cmd_stream_create, cli_cmd_stream_list, cli_cmd_stream_describe,
    cli_cmd_stream_delete, cli_cmd_stream_split, cli_cmd_stream_merge, cli_cmd_stream_reshard;
extern const struct cli_cmd cli_cmd_produce, cli_cmd_queue_send, cli_cmd_topic_publish;
extern const struct cli_cmd cli_cmd_consume, cli_cmd_lag;
extern const struct cli_cmd cli_cmd_group_describe, cli_cmd_group_reset; /* cgroup.c */
extern const struct cli_cmd cli_cmd_queue_create, cli_cmd_queue_receive, cli_cmd_queue_ack,
    cli_cmd_queue_nack, cli_cmd_queue_stats, cli_cmd_queue_purge, cli_cmd_queue_redrive;
extern const struct cli_cmd cli_cmd_queue_work;
extern const struct cli_cmd cli_cmd_topic_create, cli_cmd_topic_subscribe,
    cli_cmd_topic_subscriptions, cli_cmd_topic_unsubscribe;
extern const struct cli_cmd cli_cmd_target_add, cli_cmd_target_remove, cli_cmd_target_list;
extern const struct cli_cmd cli_cmd_cluster_status; /* cluster.c */
extern const struct cli_cmd cli_cmd_cluster_reassign, cli_cmd_cluster_move; /* cluster_move.c */
extern const struct cli_cmd cli_cmd_bus_create, cli_cmd_bus_list, cli_cmd_bus_delete,
    cli_cmd_rule_put, cli_cmd_rule_list, cli_cmd_rule_delete,
    cli_cmd_archive_create, cli_cmd_archive_list, cli_cmd_archive_delete, cli_cmd_replay_start,
    cli_cmd_replay_describe, cli_cmd_replay_cancel, cli_cmd_replay_list; /* rule.c */

/* --compression's values (stream create, produce); in stream.c. */
extern const struct cli_opt_choice cli_compression_choices[];

/* Prints "sluice CMD: <message>" and the command's usage line on stderr; returns
 * CLI_EXIT_USAGE. */
int cli_usage(const struct cli_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Whether the option `name` of the command's table `set` was given. */
int cli_call_seen(const struct cli_call *call, size_t set, const char *name);

/* Set by SIGINT and SIGTERM once cli_signals_install ran; loops poll it. */
extern volatile sig_atomic_t cli_stop_requested;

/* SIGINT and SIGTERM set cli_stop_requested; SIGPIPE is ignored (writes fail with EPIPE). */
void cli_signals_install(void);


#endif
