/* group.h - making queue groups from the CLI: the options `queue create` and `topic
 * subscribe` share, and the calls behind both (and `topic create`). */
#ifndef SL_CLI_GROUP_H
#define SL_CLI_GROUP_H

#include "client/cli/opt.h"
#include "client/sluice.h"

#include <stddef.h>
#include <stdint.h>

#define CLI_DEFAULT_GROUP "default"

/* The --group entry of a queue command's table: `field` of `type`, a const char *, which
 * the command's init sets to CLI_DEFAULT_GROUP. */
#define CLI_GROUP_OPT(type, field)                                                                 \
    {                                                                                              \
        .name = "group", .kind = CLI_OPT_STRING, .offset = offsetof(type, field),                  \
        .value_name = "G", .help = "the queue group (default \"" CLI_DEFAULT_GROUP "\")"           \
    }

/* The table for a struct sluice_queue_group_opts: --visibility, --max-deliveries,
 * --dead-letter, --ordered, --filter (a JSON object), --from (oldest, latest or a time),
 * --max-inflight. Strings point into argv. */
extern const struct cli_opt cli_group_opts[];

/* Creates stream `name` with `shards` shards unless it exists; with `must_create` an
 * existing one is an error too. `have_shards`: warn when an existing stream has another
 * count. `what` names the command in errors. Returns CLI_EXIT_*. */
int cli_group_stream_ensure(sluice_client *c, const char *name, uint32_t shards, int have_shards,
                            int must_create, const char *what);

/* Creates queue group `group` on `stream` (a subscription when `is_topic`: the messages
 * say so) and reports it on stderr. Returns CLI_EXIT_*. */
int cli_group_create(sluice_client *c, const char *stream, const char *group,
                     const struct sluice_queue_group_opts *o, int is_topic);

#endif
