/* kinesis_codec.h - the Kinesis API's wire pieces, pure (no engine, no I/O,
 * no clock): request bodies (JSON, already parsed by jansson) turned into
 * request structs with every AWS limit checked, 128-bit decimal hash keys
 * and ranges, shard ids, stream ARNs, shard-iterator token layout, and an
 * output buffer that writes JSON without a node per record (base64 is
 * common/base64.h).
 *
 * Threading: none of its own; every function is reentrant.
 * Ownership: written per pointer. Decoded requests borrow strings from the
 * json_t they came from (keep it alive) and own their data arena.
 * Fuzzed by tests/fuzz/fuzz_kinesis.c.
 */
#ifndef SL_API_KINESIS_CODEC_H
#define SL_API_KINESIS_CODEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef unsigned __int128 sl_u128;

/* AWS Kinesis limits (docs: "Quotas and limits"). */
#define SL_KIN_RECORDS_MAX       500u        /* records per PutRecords */
#define SL_KIN_RECORD_BYTES_MAX  (1u << 20)  /* data + partition key of one record */
#define SL_KIN_REQUEST_BYTES_MAX (5u << 20)  /* data + keys of one PutRecords */
#define SL_KIN_KEY_BYTES_MAX     256u        /* partition key (bytes here: see kinesis.c) */
#define SL_KIN_GET_LIMIT_MAX     10000u      /* records per GetRecords */
#define SL_KIN_GET_BYTES_MAX     (10u << 20) /* data per GetRecords */
#define SL_KIN_SHARD_ID_LEN      20u         /* "shardId-" + 12 digits */
#define SL_KIN_NAME_MAX          128u        /* stream and consumer names */
#define SL_KIN_TOKEN_BYTES_MAX   512u        /* a shard iterator, base64 (AWS: 1-512) */
#define SL_KIN_MAC_BYTES         16u         /* truncated HMAC-SHA256 of an iterator */
#define SL_KIN_DEC_U128_MAX      39u         /* digits of 2^128 - 1 */

/* ---- 128-bit hash keys ---------------------------------------------------- */

/* Parses a decimal string < 2^128 (1-39 digits, no sign). Errors: SL_EINVAL. */
int sl_kin_u128_parse(const char *s, sl_u128 *out);
/* Writes the decimal form and a NUL into `out` (>= SL_KIN_DEC_U128_MAX + 1). */
void sl_kin_u128_format(sl_u128 v, char *out);
/* Shard i of n covers [start(i), start(i + 1) - 1] with start(i) =
 * floor(i * 2^128 / n): equal ranges covering 0 .. 2^128 - 1 without gaps,
 * the same split AWS gives a new stream. */
sl_u128 sl_kin_range_start(uint32_t i, uint32_t n);
sl_u128 sl_kin_range_end(uint32_t i, uint32_t n);
/* The shard whose range holds `h`. */
uint32_t sl_kin_shard_of(sl_u128 h, uint32_t n);
/* The first 16 bytes of a digest as a big-endian integer. */
sl_u128 sl_kin_u128_be(const uint8_t *d16);

/* ---- names ------------------------------------------------------------- */

/* "shardId-%012u" into out (>= SL_KIN_SHARD_ID_LEN + 1). */
void sl_kin_shard_id(uint32_t shard, char *out);
/* Parses "shardId-<digits>" (up to 12 digits). Errors: SL_EINVAL. */
int sl_kin_shard_parse(const char *s, uint32_t *out);
/* AWS stream and consumer names: 1-128 of [a-zA-Z0-9_.-]. */
bool sl_kin_name_ok(const char *s);
/* The stream name of "arn:aws:kinesis:<region>:<account>:stream/<name>"
 * (anything after the name, e.g. "/consumer/...", is left in *rest or must
 * be absent when rest is NULL). Copies into name (SL_KIN_NAME_MAX + 1).
 * Errors: SL_EINVAL. */
int sl_kin_arn_stream(const char *arn, char *name, const char **rest);

/* ---- requests ---------------------------------------------------------- */

struct sl_kin_entry {
    const char *key; /* borrowed from the json_t */
    uint32_t key_len;
    uint32_t data_len;
    const uint8_t *data; /* borrowed from the request's arena */
    bool explicit_hash;
    sl_u128 hash;   /* ExplicitHashKey when explicit_hash, else filled by the caller (MD5) */
    uint32_t shard; /* filled by the caller */
    uint32_t index; /* position in its shard's batch, filled by the caller */
};

/* PutRecord (single = true: fields at the top level) or PutRecords. */
struct sl_kin_put {
    const char *stream;     /* borrowed: StreamName, or NULL when only StreamARN came */
    const char *stream_arn; /* borrowed or NULL */
    uint32_t n;
    struct sl_kin_entry *entries; /* owned (free with sl_kin_put_free) */
    uint8_t *arena;               /* owned: every record's decoded data */
    size_t bytes;                 /* data + keys, for the 5 MiB rule */
};

/* Fills `out` from a PutRecord(s) body. On error `why` names the field and
 * the limit, and *serialization tells whether AWS would call it a
 * SerializationException (bad base64, wrong JSON type) rather than an
 * InvalidArgumentException. Errors: SL_EPROTO, SL_EINVAL, SL_ETOOBIG,
 * SL_ENOMEM. */
int sl_kin_decode_put(const json_t *body, bool single, struct sl_kin_put *out, bool *serialization,
                      char *why, size_t why_len);
void sl_kin_put_free(struct sl_kin_put *p); /* idempotent */
/* sl_kin_decode_put on the JSON text itself (kinesis_scan.c: no parse tree,
 * each record's data decoded straight into the arena): the same answers.
 * Every string of `out` points into its arena. */
int sl_kin_scan_put(const uint8_t *body, size_t len, bool single, struct sl_kin_put *out,
                    bool *serialization, char *why, size_t why_len);

enum sl_kin_iter_kind {
    SL_KIN_ITER_SEQ = 0,   /* continue at `value` (a sequence) */
    SL_KIN_ITER_TRIM = 1,  /* the oldest retained record, resolved at read */
    SL_KIN_ITER_TIME = 2,  /* the first record appended at or after `value` ms */
    SL_KIN_ITER_LATEST = 3 /* only in requests: resolved to SEQ when issued */
};

struct sl_kin_iter_req {
    const char *stream;     /* borrowed, or NULL */
    const char *stream_arn; /* borrowed, or NULL */
    uint32_t shard;
    uint32_t kind;  /* enum sl_kin_iter_kind */
    uint64_t value; /* sequence (AT/AFTER already made "at") or time_ms */
};

/* GetShardIterator's body. Errors: SL_EINVAL, SL_EPROTO (wrong JSON type). */
int sl_kin_decode_iter_req(const json_t *body, struct sl_kin_iter_req *out, char *why,
                           size_t why_len);

/* SubscribeToShard's body: ConsumerARN (borrowed), ShardId and
 * StartingPosition {Type, SequenceNumber, Timestamp} into out (stream names
 * left NULL: they come from the ARN). Errors: SL_EINVAL, SL_EPROTO. */
int sl_kin_decode_subscribe(const json_t *body, const char **consumer_arn,
                            struct sl_kin_iter_req *out, char *why, size_t why_len);

/* A shard iterator token, before base64 and authentication. */
struct sl_kin_token {
    uint32_t kind; /* SEQ, TRIM or TIME */
    uint32_t shard;
    uint64_t value;
    uint64_t issued_ms;  /* wall clock */
    uint64_t created_ms; /* the stream's creation (a re-created stream refuses it) */
    uint64_t boot;       /* the issuing process's random id */
    char stream[SL_KIN_NAME_MAX + 1];
};

/* Serialised token: header, name, MAC. */
#define SL_KIN_TOKEN_HEAD    40u
#define SL_KIN_TOKEN_RAW_MAX (SL_KIN_TOKEN_HEAD + SL_KIN_NAME_MAX + SL_KIN_MAC_BYTES)
_Static_assert((SL_KIN_TOKEN_RAW_MAX + 2) / 3 * 4 <= SL_KIN_TOKEN_BYTES_MAX,
               "an iterator fits AWS's 512 characters");

/* Lays out `t` into raw (SL_KIN_TOKEN_RAW_MAX) without the MAC; returns the
 * length the MAC covers (the MAC goes right after it). */
size_t sl_kin_token_pack(const struct sl_kin_token *t, uint8_t *raw);
/* Decodes a base64 token into `t`, and points *mac at its MAC inside raw
 * (SL_KIN_TOKEN_RAW_MAX bytes, caller's); *covered is the length the MAC
 * covers. Errors: SL_EPROTO (not a token of ours). */
int sl_kin_token_unpack(const char *b64, struct sl_kin_token *t, uint8_t *raw, size_t *covered,
                        const uint8_t **mac);

/* GetRecords' body: the token (borrowed) and Limit (default the maximum).
 * Errors: SL_EINVAL, SL_EPROTO. */
int sl_kin_decode_get(const json_t *body, const char **token, uint32_t *limit, char *why,
                      size_t why_len);

/* ---- output ------------------------------------------------------------ */

/* A growing byte buffer (geometric: no allocation per record). A failed
 * allocation marks it failed; the caller answers 500. */
struct sl_kin_buf {
    char *p; /* owned */
    size_t len;
    size_t cap;
    bool failed;
};
void sl_kin_buf_reserve(struct sl_kin_buf *b, size_t more);
void sl_kin_buf_put(struct sl_kin_buf *b, const void *s, size_t n);
void sl_kin_buf_str(struct sl_kin_buf *b, const char *s); /* raw C string */
void sl_kin_buf_fmt(struct sl_kin_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A JSON string (quotes included) of n bytes of UTF-8 text, escaped. */
void sl_kin_buf_json_str(struct sl_kin_buf *b, const void *s, size_t n);
void sl_kin_buf_b64(struct sl_kin_buf *b, const uint8_t *s, size_t n); /* no quotes */
void sl_kin_buf_free(struct sl_kin_buf *b);

#endif
