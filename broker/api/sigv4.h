/* sigv4.h - AWS Signature Version 4 verification for the AWS APIs
 * (Kinesis, SQS): the Authorization header's parser, the canonical request,
 * the signature and a bounded table of signatures already seen (replays).
 *
 * Only header authentication (Authorization: AWS4-HMAC-SHA256 ...): the
 * SDKs presign URLs (X-Amz-Signature in the query) only for S3.
 * No broker state besides the replay table the caller owns; the fuzz
 * target (tests/fuzz/fuzz_sigv4.c) and the unit test link this alone.
 * Threading: none (pure functions; a replay table belongs to one thread).
 */
#ifndef SL_API_SIGV4_H
#define SL_API_SIGV4_H

#include "broker/http/http.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_SIGV4_SKEW_MS            (15u * 60u * 1000u) /* AWS: a request's date +- 15 min */
#define SL_SIGV4_REPLAY_MAX         65536u              /* signatures remembered (oldest evicted) */
#define SL_SIGV4_KEY_ID_MAX         128u
#define SL_SIGV4_SECRET_MAX         128u /* = SL_AUTH_SECRET_MAX */
#define SL_SIGV4_SCOPE_PART_MAX     63u  /* region, service */
#define SL_SIGV4_SIGNED_HEADERS_MAX 64u
#define SL_SIGV4_SIG_BYTES          32u /* HMAC-SHA256 */
#define SL_SIGV4_WHY_MAX            320u

/* Why a request is refused; each maps onto an AWS error name per API. */
enum sl_sigv4_status {
    SL_SIGV4_OK = 0,
    SL_SIGV4_MISSING,     /* no Authorization header (MissingAuthenticationToken) */
    SL_SIGV4_INCOMPLETE,  /* malformed or missing part, wrong service (IncompleteSignature) */
    SL_SIGV4_UNKNOWN_KEY, /* the access key id is not configured (UnrecognizedClient) */
    SL_SIGV4_MISMATCH,    /* the signature or the payload hash does not match */
    SL_SIGV4_EXPIRED,     /* X-Amz-Date more than SL_SIGV4_SKEW_MS from the broker's clock */
    SL_SIGV4_REPLAY,      /* this exact signature was accepted before (within the window) */
    SL_SIGV4_INTERNAL,    /* out of memory */
};

/* The request as received (borrowed): header names lower-case. */
struct sl_sigv4_request {
    const char *method;
    const char *target; /* path and query as on the request line, e.g. "/?a=b" */
    const struct sl_http_header *headers;
    uint32_t n_headers;
    const uint8_t *body;
    size_t body_len;
};

/* The Authorization header, parsed. */
struct sl_sigv4_auth {
    char key_id[SL_SIGV4_KEY_ID_MAX + 1];
    char date[9]; /* YYYYMMDD of the credential scope */
    char region[SL_SIGV4_SCOPE_PART_MAX + 1];
    char service[SL_SIGV4_SCOPE_PART_MAX + 1];
    char signed_headers[SL_SIGV4_SIGNED_HEADERS_MAX * 24]; /* "host;x-amz-date", as sent */
    uint32_t n_signed;
    uint8_t signature[SL_SIGV4_SIG_BYTES];
};

/* Returns the secret of `key_id` and its principal (both borrowed until the
 * caller's next turn), or NULL when the key is unknown. */
typedef const char *(*sl_sigv4_lookup_fn)(void *ctx, const char *key_id, const char **principal);

struct sl_sigv4_result {
    enum sl_sigv4_status status;
    char key_id[SL_SIGV4_KEY_ID_MAX + 1]; /* as sent, when parsed; never the secret */
    const char *principal;                /* from the lookup, when SL_SIGV4_OK */
    uint64_t date_ms;                     /* X-Amz-Date, when parsed */
    uint8_t signature[SL_SIGV4_SIG_BYTES];
    char why[SL_SIGV4_WHY_MAX]; /* the cause and the fix, for the client */
};

/* Parses "AWS4-HMAC-SHA256 Credential=ID/DATE/REGION/SERVICE/aws4_request,
 * SignedHeaders=a;b, Signature=hex64" (the parts in any order, spaces after
 * commas optional). Errors: SL_EPROTO with the cause in `why`. */
int sl_sigv4_parse(const char *authorization, struct sl_sigv4_auth *out, char *why, size_t why_len);

/* The canonical request (AWS's spec, non-S3 rules: the path's segments
 * normalised and URI-encoded as received, the query decoded, re-encoded and
 * sorted, the signed headers lower-cased, trimmed, inner spaces collapsed,
 * repeated ones joined with ','), for the signed headers of `a` and the
 * payload hash `payload_hex` (64 hex digits). *out returns owned (free()),
 * NUL-terminated, *len bytes. Errors: SL_EPROTO (a signed header absent,
 * SignedHeaders not sorted or repeated; `why`), SL_ENOMEM. */
int sl_sigv4_canonical(const struct sl_sigv4_request *req, const struct sl_sigv4_auth *a,
                       const char *payload_hex, char **out, size_t *len, char *why, size_t why_len);

/* The signature: HMAC-SHA256 of the string to sign ("AWS4-HMAC-SHA256\n"
 * amz_date "\n" DATE/REGION/SERVICE/aws4_request "\n" hex(SHA256(canonical)))
 * under the key HMAC chain from "AWS4" + secret. */
void sl_sigv4_sign(const char *secret, const char *amz_date, const struct sl_sigv4_auth *a,
                   const char *canonical, size_t canonical_len, uint8_t sig[SL_SIGV4_SIG_BYTES]);

/* "YYYYMMDDTHHMMSSZ" -> milliseconds since the epoch. Errors: SL_EPROTO. */
int sl_sigv4_parse_date(const char *amz_date, uint64_t *ms);

/* Verifies `req` for `service` ("kinesis", "sqs") at wall time now_ms:
 * parse, scope (service, date = X-Amz-Date's day), X-Amz-Date within
 * SL_SIGV4_SKEW_MS, host signed, key known, payload hash (X-Amz-Content-
 * Sha256 must equal the body's), signature compared in constant time.
 * Replays are the caller's (sl_sigv4_replay_check). Fills *res (status,
 * why, key id, principal). Returns res->status. */
enum sl_sigv4_status sl_sigv4_verify(const struct sl_sigv4_request *req, const char *service,
                                     uint64_t now_ms, sl_sigv4_lookup_fn lookup, void *ctx,
                                     struct sl_sigv4_result *res);

/* Signatures accepted within the window: a fixed table of
 * SL_SIGV4_REPLAY_MAX entries, the oldest evicted first. */
struct sl_sigv4_replay;
/* Returns owned, or NULL without memory. */
struct sl_sigv4_replay *sl_sigv4_replay_new(void);
void sl_sigv4_replay_free(struct sl_sigv4_replay *r); /* NULL-safe */
/* Whether `sig` (of a request dated date_ms) was recorded and is still
 * inside its window; if not, records it. Returns true for a replay. */
bool sl_sigv4_replay_check(struct sl_sigv4_replay *r, const uint8_t sig[SL_SIGV4_SIG_BYTES],
                           uint64_t date_ms, uint64_t now_ms);
/* Entries evicted while still inside their window (replay protection
 * weakened for those: more than SL_SIGV4_REPLAY_MAX requests in 15 min). */
uint64_t sl_sigv4_replay_early_evictions(const struct sl_sigv4_replay *r);

#endif
