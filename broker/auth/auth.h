/* auth.h - principals, their credentials and what each may do (ACLs), read
 * from the auth file (`auth_file`, reloaded on SIGHUP). No wire format: the
 * front-ends authenticate (SCRAM on the native protocol, SigV4 on the AWS
 * APIs, a client certificate's name under mutual TLS) and then ask
 * sl_auth_allowed before each request.
 *
 * The file, one rule per line ('#' starts a comment):
 *   user   NAME  SCRAM-SHA-256$ITER:SALT$STOREDKEY:SERVERKEY   (sluiced --hash-password)
 *   awskey ACCESS_KEY_ID  SECRET_ACCESS_KEY  NAME               (SigV4; the secret in clear:
 *                                                               HMAC needs it)
 *   allow  NAME|*  OPS  STREAM|PREFIX*|*                        (OPS: produce,consume,queue,
 *                                                               admin or all)
 * It holds secrets, so it must not be readable by group or others (0600);
 * a file that is, or one with a malformed line, is refused with file:line.
 * Deny by default: a principal may do only what an allow line grants.
 *
 * Threading: the main loop. Immutable once loaded (a reload builds a new one).
 */
#ifndef SL_BROKER_AUTH_H
#define SL_BROKER_AUTH_H

#include "common/scram.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_AUTH_ENTRIES_MAX    65536u     /* lines of each kind */
#define SL_AUTH_FILE_BYTES_MAX (8u << 20)
#define SL_AUTH_KEY_ID_MAX     128u
#define SL_AUTH_SECRET_MAX     128u
#define SL_AUTH_PATTERN_MAX    130u
#define SL_AUTH_LINE_MAX       1024u

enum sl_acl_op {
    SL_ACL_PRODUCE = 1u << 0, /* produce, PutRecord(s), SendMessage */
    SL_ACL_CONSUME = 1u << 1, /* fetch, checkpoints, lag, GetRecords */
    SL_ACL_QUEUE = 1u << 2,   /* receive, ack, nack, visibility, queue groups */
    SL_ACL_ADMIN = 1u << 3,   /* create, delete, purge, settings */
    SL_ACL_ANY = 15u,         /* any one of them (describe a stream) */
};

struct sl_auth;

/* Reads `path`. Errors: SL_EINVAL (why: "FILE:LINE: ..."; or the file's
 * mode), SL_ENOTFOUND, SL_ETOOBIG, SL_ELIMIT, SL_ENOMEM. */
int sl_auth_load(const char *path, struct sl_auth **out, char *why, size_t why_len);
/* The same from text already read (`name` for messages; fuzzed). */
int sl_auth_parse(const char *text, size_t len, const char *name, struct sl_auth **out,
                  char *why, size_t why_len);
void sl_auth_free(struct sl_auth *auth); /* NULL-safe */

/* SCRAM credentials of `user` (sl_scram_lookup_fn; ctx = struct sl_auth *). */
bool sl_auth_scram_lookup(void *auth, const char *user, struct sl_scram_cred *cred);
/* The secret and principal of an AWS access key id, or NULL. */
const char *sl_auth_aws_secret(const struct sl_auth *auth, const char *key_id,
                               const char **principal);
/* Whether `principal` may do any of `ops` on `stream` ("" for requests not
 * about one stream: only a "*" rule matches). */
bool sl_auth_allowed(const struct sl_auth *auth, const char *principal, uint32_t ops,
                     const char *stream);
/* "produce", "consume", ...: the name of one op, for error messages. */
const char *sl_acl_op_name(uint32_t op);
uint32_t sl_auth_user_count(const struct sl_auth *auth);

#endif
