/* sns_call.h - what the SNS front-end's files share (sns.c: dispatch,
 * answers, errors, ARNs; sns_topics.c; sns_subs.c: subscriptions;
 * sns_janitor.c: what finishes their group changes; sns_publish.c). Internal.
 *
 * Threading: the main loop. A struct sns_call lives from the request's
 * arrival to its answer and owns the decoded request; nothing is read from
 * the HTTP request once an engine call has gone asynchronous.
 */
#ifndef SL_API_SNS_CALL_H
#define SL_API_SNS_CALL_H

#include "broker/api/call.h"
#include "broker/api/sns.h"
#include "broker/api/sns_req.h"
#include "broker/api/sns_store.h"

#include <stdbool.h>
#include <stdint.h>

struct sl_engine;
struct sl_push;
struct sl_stream;

#define SNS_ACCOUNT        "000000000000" /* = SQS_ACCOUNT */
#define SNS_REGION         "us-east-1"    /* = SQS_REGION */
#define SNS_ARN_PREFIX     "arn:aws:sns:" SNS_REGION ":" SNS_ACCOUNT ":"
#define SNS_PROP_PREFIX    "sns." /* topic attribute N: stream property sns.N */
#define SNS_HOST_MAX       256u
#define SNS_ARN_MAX        (sizeof(SNS_ARN_PREFIX) + SL_SNS_TOPIC_MAX + 1 + SL_SNS_ID_MAX)
#define SNS_PENDING_TTL_MS (3ull * 24 * 3600 * 1000) /* SNS: unconfirmed for 3 days */

struct sl_sns {
    struct sl_sns_store *store;
    bool busy;        /* the janitor's engine call is out */
    uint32_t cursor;  /* where the janitor looks first: one stuck group starves no other */
    uint64_t next_ms; /* the janitor's next run (monotonic) */
};

struct sns_call {
    struct sl_api_call *call;
    struct sl_engine *e;    /* borrowed */
    struct sl_push *push;   /* borrowed; NULL when push targets are off */
    struct sl_sns *sns;     /* borrowed */
    struct sl_sns_req *req; /* owned */
    char host[SNS_HOST_MAX];
    char request_id[40];
    char topic[SL_SNS_TOPIC_MAX + 1]; /* the topic the request is for */
    struct sl_sns_sub sub;            /* Subscribe / ConfirmSubscription: the one being made */
    bool token_auth; /* an unsigned SubscribeURL visit: its token is the credential, no ACL */
    bool https;      /* the request came over TLS: the SubscribeURL is https too */
};

/* Answers with the XML built in `x` (begun with sl_sns_xml_begin) and
 * frees c. */
void sns_reply(struct sns_call *c, struct sl_query_xml *x, bool result);
/* An answer with no result element (DeleteTopic, Unsubscribe, ...). */
void sns_reply_empty(struct sns_call *c);
/* Answers an SNS error and frees c. */
__attribute__((format(printf, 3, 4))) void sns_fail(struct sns_call *c, enum sl_sns_error code,
                                                    const char *fmt, ...);
/* Answers an engine error (SL_ENOTFOUND -> NotFound, SL_EINVAL ->
 * InvalidParameter, SL_ELIMIT -> the limit's error, others InternalError). */
void sns_fail_engine(struct sns_call *c, int err, const char *why);
/* The code of `code` as a PublishBatch Failed entry names it. */
const char *sns_error_code(enum sl_sns_error code);
bool sns_error_sender(enum sl_sns_error code);

/* With auth on: whether the principal may do `ops` on `topic`; if not,
 * answers AuthorizationError and returns false. */
bool sns_allowed(struct sns_call *c, uint32_t ops, const char *topic);

/* A stream that is an SNS topic. */
bool sns_is_topic(const struct sl_stream *st);
/* A topic name SNS accepts here: 1-128 of [A-Za-z0-9_-]. */
bool sns_topic_name_ok(const char *name);
void sns_topic_arn(char *out, size_t cap, const char *topic);
void sns_sub_arn(char *out, size_t cap, const struct sl_sns_sub *s);
/* The request's TopicArn -> c->topic and its stream; NULL when answered
 * (missing: InvalidParameter; no such topic: NotFound; ACL: AuthorizationError). */
struct sl_stream *sns_resolve_topic(struct sns_call *c, uint32_t ops);

/* Topics (sns_topics.c). */
void sns_create_topic(struct sns_call *c);
void sns_list_topics(struct sns_call *c);
void sns_delete_topic(struct sns_call *c);
void sns_get_topic_attributes(struct sns_call *c);
void sns_set_topic_attributes(struct sns_call *c);

/* Subscriptions (sns_subs.c). */
void sns_subscribe(struct sns_call *c);
void sns_confirm(struct sns_call *c);
void sns_unsubscribe(struct sns_call *c);
void sns_list_subscriptions(struct sns_call *c, bool by_topic);
void sns_get_sub_attributes(struct sns_call *c);
void sns_set_sub_attributes(struct sns_call *c);
/* Counts of the topic's subscriptions (GetTopicAttributes). */
void sns_sub_counts(const struct sl_sns *s, const char *topic, uint32_t *confirmed,
                    uint32_t *pending);
/* DeleteTopic: forgets the topic's subscriptions and removes their targets
 * (the groups go with the stream). Errors: those of sl_sns_store_save. */
int sns_subs_drop_topic(struct sns_call *c, const char *topic, char *why, size_t why_len);
/* A subscription's queue group settings (strings borrowed from s) and its
 * push target. */
struct sl_qgroup_config;
struct sl_push_target;
void sns_group_config(const struct sl_sns_sub *s, struct sl_qgroup_config *g);
void sns_target_of(const struct sl_sns_sub *s, struct sl_push_target *t);
/* Saves the subscriptions file; a failure is also logged. */
int sns_save(struct sl_sns *sns, char *why, size_t why_len);
/* The janitor (sns_janitor.c, from sl_sns_tick). */
void sns_janitor(struct sl_sns *s, struct sl_engine *e, struct sl_push *push, uint64_t now_ms);

/* Publishing (sns_publish.c). */
void sns_publish(struct sns_call *c, struct sl_stream *st);

#endif
