/* sns_store.h - what the SNS API knows of its subscriptions that the engine
 * does not hold: the subscription id (= the queue group's name on the topic's
 * stream), protocol, endpoint, attributes, confirmation token and state.
 * Topics need no file: a topic is a stream with the property
 * sns.CreatedTimestamp (its attributes are sns.<Name> properties).
 *
 * The file (<data>/sns/subscriptions): u32 magic "SLSN", u32 version (1),
 * u32 count, then per subscription: u16-length-prefixed strings id, topic,
 * protocol, endpoint, token, filter, redrive (the dead-letter queue's
 * name); u8 flags (bit 0 confirmed, 1 body scope, 2 raw delivery, 3 group
 * to re-create, 4 deleted: only its group is left to delete); u64 created
 * (wall ms); then u64 XXH3 of everything before it. Written whole on each
 * change (tmp, fsync, rename, fsync dir): subscriptions change rarely; the
 * file is at most SL_SNS_SUBS_MAX entries of bounded size.
 *
 * Threading: the main loop.
 */
#ifndef SL_API_SNS_STORE_H
#define SL_API_SNS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_SNS_SUBS_MAX     1024u /* = SL_PUSH_TARGETS_MAX: each may own a target */
#define SL_SNS_ID_MAX       36u   /* a UUID */
#define SL_SNS_TOPIC_MAX    128u  /* = SL_STREAM_NAME_MAX (SNS allows 256) */
#define SL_SNS_ENDPOINT_MAX 2048u /* = SL_PUSH_URL_MAX */
#define SL_SNS_TOKEN_MAX    64u   /* 32 random bytes in hex */
#define SL_SNS_FILTER_MAX   4096u /* = SL_FILTER_TEXT_MAX */
#define SL_SNS_PROTOCOL_MAX 8u

enum {
    SL_SNS_SUB_CONFIRMED = 1u << 0,
    SL_SNS_SUB_BODY_SCOPE = 1u << 1, /* FilterPolicyScope MessageBody */
    SL_SNS_SUB_RAW = 1u << 2,        /* RawMessageDelivery */
    SL_SNS_SUB_REGROUP = 1u << 3,    /* the group must be re-created (filter, redrive changed) */
    SL_SNS_SUB_DELETED = 1u << 4,    /* unsubscribed: its group is left to delete */
    SL_SNS_SUB_FLAGS_ = (1u << 5) - 1,
};

struct sl_sns_sub {
    char id[SL_SNS_ID_MAX + 1];
    char topic[SL_SNS_TOPIC_MAX + 1];
    char protocol[SL_SNS_PROTOCOL_MAX + 1]; /* sqs, http, https */
    char endpoint[SL_SNS_ENDPOINT_MAX + 1]; /* sqs: the queue's name; http(s): the URL */
    char token[SL_SNS_TOKEN_MAX + 1];       /* "" once confirmed */
    char filter[SL_SNS_FILTER_MAX + 1];     /* FilterPolicy, "" none */
    char redrive[SL_SNS_TOPIC_MAX + 1];     /* the dead-letter queue's name, "" none */
    uint32_t flags;
    uint64_t created_ms;
};

struct sl_sns_store {
    char path[4096], tmp[4096], dir[4096];
    struct sl_sns_sub **subs; /* owned, each owned */
    uint32_t n;
};

/* Loads <data_dir>/sns/subscriptions (none: empty). Errors: SL_ECORRUPT
 * (`why` names the file and the fix), SL_EIO, SL_ENOMEM. */
int sl_sns_store_open(const char *data_dir, struct sl_sns_store **out, char *why, size_t why_len);
void sl_sns_store_close(struct sl_sns_store *s); /* NULL-safe */

/* Adds the subscriptions of a file's bytes `buf` (borrowed) to `s` (which
 * holds none yet): what the load does after reading the file; fuzzed.
 * Errors: SL_ECORRUPT (checksum, structure, a field past its limit),
 * SL_ENOMEM. */
int sl_sns_store_parse(struct sl_sns_store *s, const uint8_t *buf, size_t len);
/* A store with no file behind it (fuzzing, tests): sl_sns_store_save fails. */
struct sl_sns_store *sl_sns_store_empty(void);

/* Writes every subscription, durably. Errors: SL_EIO, SL_ENOSPC, SL_ENOMEM. */
int sl_sns_store_save(struct sl_sns_store *s, char *why, size_t why_len);

/* The live (not deleted) subscription `id`, or NULL. */
struct sl_sns_sub *sl_sns_store_find(const struct sl_sns_store *s, const char *id);

/* Adds a copy of `sub` (not saved yet). Errors: SL_ELIMIT, SL_ENOMEM. */
int sl_sns_store_add(struct sl_sns_store *s, const struct sl_sns_sub *sub, struct sl_sns_sub **out);

/* Forgets subscription `sub` (not saved yet). */
void sl_sns_store_remove(struct sl_sns_store *s, struct sl_sns_sub *sub);

#endif
