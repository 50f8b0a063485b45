/* sluice.h - libsluice, the C client of the Sluice log broker (the only public header).
 *
 * Self-contained: it includes only <stddef.h> and <stdint.h>, compiles as C11 and C++, and
 * is installed as <sluice.h>; `pkg-config --cflags --libs sluice` gives the flags (add
 * --static for libsluice.a). Every exported symbol is declared here and named sluice_*;
 * the ABI policy (what bumps libsluice.so's SONAME) is in docs/ARCHITECTURE.md.
 *
 * Nouns: a client (one TCP connection to a broker, pipelined, with one background I/O
 * thread), admin calls on it, a producer (asynchronous, batching, idempotent retries), a
 * consumer (cursor reads over a stream's shards, checkpoints in a consumer group), and queue
 * groups (competing consumers with leases, acks and nacks; topic subscriptions).
 *
 * Errors: every fallible function returns an `int` from enum sluice_err: SLUICE_OK == 0,
 * or SLUICE_E*. The broker's error codes are the same numbers. After a failed call the
 * human-readable reason (the broker's message, or a local one such as "connect
 * 127.0.0.1:7400: Connection refused") is in sluice_last_error(), kept per thread.
 * Timeouts are reported as SLUICE_EAGAIN with a "timed out" message. A broken connection
 * fails every request in flight with SLUICE_ECLOSED; the next call reconnects (with backoff).
 *
 * Memory: structs returned through `**out` parameters are owned by the caller and freed
 * with the matching sluice_*_free function. Pointers passed in are borrowed for the call
 * unless a comment says otherwise.
 *
 * Threads: a client may be used from any number of threads at once; callbacks run on the
 * client's I/O thread (or a producer's flusher thread) and must not block or call
 * synchronous functions of the same client. Each function states its rules below.
 */
#ifndef SLUICE_H
#define SLUICE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libsluice is built with -fvisibility=hidden: what is declared between this push and the
 * pop at the end is what libsluice.so exports. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* Error codes. The numbers are stable (they are the broker's wire codes too) and never
 * reused; a later version may add codes after the last one, so treat an unknown code as a
 * failure (sluice_strerror() says "unknown error"). */
enum sluice_err {
    SLUICE_OK = 0,
    SLUICE_EAGAIN = 1,        /* try again later: a buffer or queue is full, or timed out */
    SLUICE_ECORRUPT = 2,      /* checksum or structure mismatch in stored or received bytes */
    SLUICE_ENOSPC = 3,        /* the broker's disk is full; appends refused, reads work */
    SLUICE_EPROTO = 4,        /* malformed input from a peer (bad frame, wrong answer) */
    SLUICE_ETOOBIG = 5,       /* an input exceeds a size limit */
    SLUICE_ELIMIT = 6,        /* a configured count limit was reached */
    SLUICE_ENOTFOUND = 7,     /* no such stream, shard, group or receipt */
    SLUICE_ETRIMMED = 8,      /* asked below the oldest retained sequence */
    SLUICE_EFATAL = 9,        /* a shard stopped accepting writes (e.g. after a failed fsync) */
    SLUICE_EIO = 10,          /* an I/O error (on the broker, or locally) */
    SLUICE_EINVAL = 11,       /* an invalid argument */
    SLUICE_ENOMEM = 12,       /* allocation failed */
    SLUICE_EEXIST = 13,       /* already exists */
    SLUICE_ECLOSED = 14,      /* the connection or object is closing or closed */
    SLUICE_EUNSUPPORTED = 15, /* the broker (or this system) lacks a needed feature */
    SLUICE_ESYS = 16,         /* another OS error */
    SLUICE_EAUTH = 17,        /* authentication required (no credentials), or it failed */
    SLUICE_EDENIED = 18,      /* the authenticated user lacks the right (the broker's ACL) */
    SLUICE_EFENCED = 19,      /* a group member acted on a shard it no longer holds: rejoin */
    SLUICE_ESHARD_CLOSED = 20, /* the shard was split or merged: write to its children */
    SLUICE_ECONFLICT = 21,    /* changed concurrently: read again and retry */
    SLUICE_ENOT_LEADER = 22,  /* this broker does not lead the shard: refresh metadata */
    SLUICE_ENOT_ENOUGH_REPLICAS = 23, /* fewer in-sync replicas than min_insync_replicas */
};

#define SLUICE_DEFAULT_BROKER "127.0.0.1:7400"
#define SLUICE_SEQ_UNKNOWN    UINT64_MAX /* delivery of an ACK_NONE record: no sequence */
#define SLUICE_ALL_SHARDS     UINT32_MAX

/* Returns the message of the last failed call on this thread (never NULL; "" if none). */
const char *sluice_last_error(void);

/* Returns a static description of an error code; never NULL ("unknown error"). */
const char *sluice_strerror(int err);

/* ---- client ------------------------------------------------------------------------------ */

typedef struct sluice_client sluice_client;

struct sluice_client_opts {
    uint32_t connect_timeout_ms;       /* 0 = 5000 */
    uint32_t request_timeout_ms;       /* per call, excluding a fetch's long-poll; 0 = 30000 */
    uint32_t reconnect_backoff_ms;     /* first delay after a failed connect, doubles; 0 = 100 */
    uint32_t reconnect_backoff_max_ms; /* 0 = 5000 */
    const char *client_id;             /* free text for the broker's logs; NULL = "libsluice";
                                          copied (up to 127 bytes) */
    /* TLS 1.2+ (on when `tls` is 1 or any file below is set). The broker's certificate is
     * always verified: against tls_ca_file, else the system's CA store, and for the name
     * tls_server_name (a DNS name or an IP address; NULL = the host of host_port). The
     * files are read once, by sluice_client_new. */
    int tls;
    const char *tls_ca_file;     /* PEM CA certificates that sign the broker's */
    const char *tls_cert_file;   /* PEM client certificate, for brokers that ask (mutual TLS) */
    const char *tls_key_file;    /* PEM private key of tls_cert_file */
    const char *tls_server_name; /* name the certificate must carry */
    /* Authentication, for brokers with auth = true: SCRAM-SHA-256 (the password never leaves
     * the process). When user and password are both NULL they come from $SLUICE_USER and
     * $SLUICE_PASSWORD, else from credentials_file (NULL: $SLUICE_CREDENTIALS_FILE): lines
     * "user = NAME" and "password = SECRET" in a file only its owner may read (0600). A
     * client certificate may authenticate instead, where the broker requires one. Read once,
     * by sluice_client_new. */
    const char *user;
    const char *password;
    const char *credentials_file;
};

/* Connects to `host_port` ("host:port", "[v6]:port"; borrowed) and says Hello (protocol
 * version 1). `opts` may be NULL (defaults). Starts the client's I/O thread.
 * Cluster mode (#14): `host_port` may be a bootstrap list "H1:P1,H2:P2,..." (at most 16):
 * the client connects to the first that answers, learns the brokers and who leads each
 * shard (Metadata) and sends a shard's produces and fetches to its leader, on one
 * connection per broker (each with its own I/O thread, opened when first needed); other
 * calls go to the broker it is connected to, or the next of the list when that one is
 * gone. A single address behaves as it always has.
 * Errors: SLUICE_EINVAL (bad address; a TLS or credentials file that cannot be read, see
 * sluice_last_error), SLUICE_EAUTH (credentials missing or refused), SLUICE_ECLOSED (cannot
 * connect, TLS or protocol handshake failed; see sluice_last_error), SLUICE_EUNSUPPORTED (the
 * broker refused the protocol version), SLUICE_ENOMEM, SLUICE_ESYS. Thread-safe. */
int sluice_client_new(const char *host_port, const struct sluice_client_opts *opts,
                      sluice_client **out);

/* Closes the connection, fails requests still in flight with SLUICE_ECLOSED (their callbacks
 * run), joins the I/O thread and frees the client. Free producers and consumers first.
 * NULL-safe. Not to be called concurrently with other calls on the client. */
void sluice_client_free(sluice_client *c);

/* ---- admin (synchronous; thread-safe) ---------------------------------------------------- */

enum sluice_compression {
    SLUICE_COMPRESSION_DEFAULT = 0, /* producer: the stream's setting; create: broker default */
    SLUICE_COMPRESSION_NONE = 1,
    SLUICE_COMPRESSION_ZSTD = 2,
};

struct sluice_stream_opts {
    uint32_t shard_count;     /* 1 .. 4096 (queue groups: streams of at most 1,024) */
    uint32_t retention_hours; /* 1 .. 8760; 0 = broker default */
    uint64_t retention_bytes; /* per shard; 0 = no cap */
    enum sluice_compression compression;
    /* cluster mode: copies of each shard, each on its own broker (0: 3, or every broker when
     * fewer are up; at most 7); a single broker refuses more than 1 (SLUICE_EUNSUPPORTED) */
    uint32_t replication_factor;
};

#define SLUICE_SHARD_PARENTS_MAX 2u /* a merge has two parents, a split two children */

/* One shard. Its hash range holds the XXH3-64 hashes of the keys it takes; the open shards'
 * ranges partition the 64-bit hash space. */
struct sluice_shard_info {
    uint32_t shard;
    uint64_t hash_start; /* inclusive */
    uint64_t hash_end;   /* inclusive */
    uint64_t first_seq;  /* oldest retained */
    uint64_t next_seq;   /* the sequence the next record gets */
    uint64_t bytes;
    uint32_t segments;
    int status;              /* SLUICE_OK, SLUICE_ENOSPC or SLUICE_EFATAL */
    char status_message[96]; /* why, when not SLUICE_OK ("fdatasync failed: ...") */
    /* Resharding (docs/PROTOCOL.md "Resharding"). A closed shard was split or merged: it
     * takes no more appends, next_seq is its end, and it stays readable until retention
     * removes it; for every key its records come before its children's. */
    int closed;
    uint32_t parents[SLUICE_SHARD_PARENTS_MAX]; /* the shards it was split or merged from */
    uint32_t parents_len;                       /* 0 (an original shard) .. 2 (a merge) */
    uint32_t children[SLUICE_SHARD_PARENTS_MAX]; /* when closed: the shards that took its range */
    uint32_t children_len;                       /* 0 while open; 1 (merged) or 2 (split) */
};

struct sluice_stream_info {
    char *name;
    uint32_t shard_count;
    uint32_t retention_hours;
    uint64_t retention_bytes;
    char *compression; /* "none" or "zstd" */
    uint64_t created_ms;
    struct sluice_shard_info *shards; /* filled by describe/create; NULL from list */
    uint32_t shards_len;
    /* shard_count counts every shard id given (0 .. shard_count-1), closed ones included
     * (shards[] lacks those retention removed); open_shards the ones taking appends. */
    uint32_t open_shards;
};

/* Creates a stream. `info_out` may be NULL; else receives the new stream (free it with
 * sluice_stream_info_free). On a cluster it returns once every shard's leader has the stream
 * (at most 10 s), SLUICE_EEXIST too (made by another client a moment ago: once the broker
 * asked and every leader describe it), so a call right after it finds the stream. Errors:
 * SLUICE_EEXIST, SLUICE_EINVAL, SLUICE_ELIMIT, SLUICE_ENOSPC, SLUICE_ECLOSED, SLUICE_EAGAIN
 * (timeout), broker errors. */
int sluice_stream_create(sluice_client *c, const char *name, const struct sluice_stream_opts *o,
                         struct sluice_stream_info **info_out);
/* Deletes a stream and its data. Errors: SLUICE_ENOTFOUND, SLUICE_ECLOSED, SLUICE_EAGAIN, broker
 * errors. */
int sluice_stream_delete(sluice_client *c, const char *name);
/* Describes one stream with its shards. Errors: SLUICE_ENOTFOUND, SLUICE_ECLOSED, SLUICE_EAGAIN. */
int sluice_stream_describe(sluice_client *c, const char *name, struct sluice_stream_info **out);
void sluice_stream_info_free(struct sluice_stream_info *info); /* NULL-safe */

/* Resharding (Kinesis's SplitShard, MergeShards, UpdateShardCount): each call is one durable
 * change of the stream's layout, made while producers and consumers run. Closed shards
 * keep their records (readable until retention removes them) and children get the next
 * shard ids; a producer re-routes on its own (SLUICE_ESHARD_CLOSED is handled inside), a
 * consumer reading all shards reads a child after its parents. Needs the `admin` right. */
struct sluice_reshard_result {
    struct sluice_stream_info *stream; /* the stream after the change, as describe says */
    uint32_t *closed;                  /* shards the change closed */
    size_t closed_len;
    uint32_t *opened; /* shards it opened (the children), ascending */
    size_t opened_len;
};
/* Splits open shard `shard` of `name` in two: the second child starts at hash `*at` (NULL:
 * the middle of the shard's range). `out` may be NULL; else *out gets the result (free
 * with sluice_reshard_result_free). Errors: SLUICE_ENOTFOUND (stream or shard),
 * SLUICE_ESHARD_CLOSED (the shard is closed already), SLUICE_EINVAL (`at` outside the range
 * or at its start), SLUICE_ELIMIT (the lineage would pass the broker's shard limits),
 * SLUICE_EDENIED, SLUICE_EUNSUPPORTED (a broker without resharding), SLUICE_ECLOSED,
 * SLUICE_EAGAIN, SLUICE_ENOMEM, SLUICE_EPROTO. Thread-safe. */
int sluice_stream_split(sluice_client *c, const char *name, uint32_t shard, const uint64_t *at,
                        struct sluice_reshard_result **out);
/* Merges open shards `shard` and `adjacent`, whose ranges touch (either side), into one.
 * Errors as sluice_stream_split; SLUICE_EINVAL: the shards are not adjacent. */
int sluice_stream_merge(sluice_client *c, const char *name, uint32_t shard, uint32_t adjacent,
                        struct sluice_reshard_result **out);
/* Splits and merges until the stream has `open_shards` open shards over uniform ranges
 * (UpdateShardCount, UNIFORM_SCALING). Errors as sluice_stream_split; SLUICE_EINVAL: 0 or
 * over the broker's shards_max. */
int sluice_stream_reshard(sluice_client *c, const char *name, uint32_t open_shards,
                          struct sluice_reshard_result **out);
void sluice_reshard_result_free(struct sluice_reshard_result *r); /* NULL-safe */

/* Lists all streams (shards not filled): *out is an array of *count infos, freed with
 * sluice_stream_list_free. Errors: SLUICE_ECLOSED, SLUICE_EAGAIN. */
int sluice_stream_list(sluice_client *c, struct sluice_stream_info **out, size_t *count);
void sluice_stream_list_free(struct sluice_stream_info *list, size_t count); /* NULL-safe */

struct sluice_checkpoint {
    uint32_t shard;
    uint64_t seq; /* the next sequence to read */
    uint64_t updated_ms;
};
/* The group's checkpoints on a stream (shards without one are absent; *count may be 0).
 * Free *out with free(). Errors: SLUICE_ENOTFOUND (stream), SLUICE_ECLOSED, SLUICE_EAGAIN. */
int sluice_checkpoints_get(sluice_client *c, const char *group, const char *stream,
                           struct sluice_checkpoint **out, size_t *count);
/* Commits `seq` (the next sequence to read) for one shard; durable when it returns.
 * Errors: SLUICE_ENOTFOUND, SLUICE_EINVAL, SLUICE_ECLOSED, SLUICE_EAGAIN. */
int sluice_checkpoint_commit(sluice_client *c, const char *group, const char *stream,
                             uint32_t shard, uint64_t seq);

/* The groups reading a stream: *out is an array of *count strings, freed with
 * sluice_groups_free. Errors: SLUICE_ENOTFOUND, SLUICE_ECLOSED, SLUICE_EAGAIN. */
int sluice_groups_list(sluice_client *c, const char *stream, char ***out, size_t *count);
void sluice_groups_free(char **groups, size_t count); /* NULL-safe */

struct sluice_shard_lag {
    uint32_t shard;
    uint64_t checkpoint; /* the group's next sequence (first_seq if none) */
    uint64_t tail_seq;
    uint64_t records_behind;
    uint64_t ms_behind;
};
/* Per-shard lag of a group. Free *out with free(). Errors: SLUICE_ENOTFOUND, SLUICE_ECLOSED,
 * SLUICE_EAGAIN. */
int sluice_group_lag(sluice_client *c, const char *group, const char *stream,
                     struct sluice_shard_lag **out, size_t *count);

/* ---- records and positions --------------------------------------------------------------- */

struct sluice_attr {
    const char *key; /* not NUL-terminated */
    uint32_t key_len;
    const char *value; /* not NUL-terminated */
    uint32_t value_len;
};

enum sluice_ack {
    SLUICE_ACK_DURABLE = 0, /* after an fdatasync covers the batch (default) */
    SLUICE_ACK_WRITTEN = 1, /* after the write */
    SLUICE_ACK_NONE = 2,    /* fire and forget: no response, delivery reports SEQ_UNKNOWN */
};

enum sluice_position_kind {
    SLUICE_TRIM_HORIZON = 0,   /* the oldest retained record */
    SLUICE_LATEST = 1,         /* only records appended from now on */
    SLUICE_AT_SEQUENCE = 2,    /* the record with sequence `seq` */
    SLUICE_AFTER_SEQUENCE = 3, /* the record after `seq` */
    SLUICE_AT_TIMESTAMP = 4,   /* the first record appended at or after `time_ms` */
};

struct sluice_position {
    enum sluice_position_kind kind;
    uint64_t seq;
    uint64_t time_ms;
};

/* Parses "oldest" | "latest" | "seq:N" | "after:N" | "time:MS" | "time:ISO8601" (e.g.
 * 2024-05-01T12:00:00Z, 2024-05-01T12:00:00.250+02:00) into *out. Errors: SLUICE_EINVAL.
 * Thread-safe (pure). */
int sluice_position_parse(const char *s, struct sluice_position *out);

/* Parses an ISO 8601 date-time (UTC "Z" or a ±HH:MM offset; no offset = UTC) into Unix
 * milliseconds. Errors: SLUICE_EINVAL. Thread-safe (pure). */
int sluice_time_parse_iso8601(const char *s, uint64_t *ms_out);

/* ---- producer ---------------------------------------------------------------------------- */

typedef struct sluice_producer sluice_producer;

/* Delivery report, once per record: err SLUICE_OK with the record's shard and sequence, or the
 * final error after retries. Runs on the client's I/O thread or the producer's flusher
 * thread; must not block (no blocking produce, no flush, no synchronous client calls). */
typedef void (*sluice_delivery_cb)(void *ctx, int err, uint32_t shard, uint64_t seq);

#define SLUICE_LINGER_NONE 0xffffffffu

/* Tracing, a diagnostic (sluice-bench --mode tail; docs/PROTOCOL.md, Tracing): the stages of
 * one batch as CLOCK_MONOTONIC ns (this host's clock, the broker's too when it runs here),
 * indexed by these; 0 = a stage it did not pass. */
enum sluice_produce_trace {
    SLUICE_PT_SEALED,       /* the batch was closed (full, linger, flush) for the flusher */
    SLUICE_PT_SENT,         /* the flusher began sending it */
    SLUICE_PT_RECEIVED,     /* broker: the request was read */
    SLUICE_PT_APPEND,       /* broker: handed to the shard's owner */
    SLUICE_PT_WRITE_SUBMIT, /* broker: its staging buffer became a ring write */
    SLUICE_PT_WRITE_DONE,   /* broker: that write completed */
    SLUICE_PT_SYNC_DONE,    /* broker: the fdatasync covering it completed (durable acks) */
    SLUICE_PT_ACKED,        /* broker: the main loop had the acknowledgement (visible) */
    SLUICE_PT_ANSWERED,     /* broker: the answer was queued to send */
    SLUICE_PT_ACK_RECEIVED, /* the client's I/O thread had the answer */
    SLUICE_PT_N
};
/* Runs on the client's I/O thread for every acknowledged batch, before its records'
 * delivery callbacks; `ns` is borrowed for the call. */
typedef void (*sluice_produce_trace_cb)(void *arg, uint32_t shard, uint64_t base_seq,
                                        uint32_t count, const uint64_t *ns);

struct sluice_producer_opts {
    size_t batch_bytes;  /* seal a shard's batch at this size; 0 = 1 MiB */
    uint32_t linger_ms;  /* send a non-full batch after this; 0 = 5; SLUICE_LINGER_NONE:
                          * send at once whenever the shard has no batch in flight
                          * (batches then form only while one is in flight: lowest
                          * latency, still batched under load; full batches go up
                          * to max_inflight_batches at a time) */
    size_t buffer_bytes; /* bytes produced but not yet acknowledged; 0 = 64 MiB */
    int block_when_full; /* 1: produce waits for space; 0: it returns SLUICE_EAGAIN */
    enum sluice_ack ack;
    enum sluice_compression compression; /* DEFAULT = the stream's setting */
    int compression_level;               /* zstd level; 0 = 3 */
    uint32_t retries;                    /* per batch, for SLUICE_EAGAIN / SLUICE_ECLOSED; 0 = 10 */
    uint32_t retry_backoff_ms;           /* first delay, doubles up to 5 s; 0 = 100 */
    uint32_t max_inflight_batches; /* per shard, awaiting their ack; 0 = 5, at most
                                    * SLUICE_INFLIGHT_BATCHES_MAX. The broker stores a
                                    * shard's batches in order whatever is in flight (a
                                    * batch behind a failed one is refused until that one
                                    * is resent, and the producer resends in order); 1
                                    * waits for each batch's ack before sending the next */
    /* Set: every Produce asks the broker for its stages' times (a few clock reads each,
     * ~90 bytes more per answer) and on_trace(on_trace_arg, ...) reports them. */
    sluice_produce_trace_cb on_trace;
    void *on_trace_arg;
};
#define SLUICE_INFLIGHT_BATCHES_MAX 8u /* the broker remembers where the last 8 were stored */

/* Creates a producer for `stream` (borrowed). Describes the stream to learn its shard
 * count and compression, picks a random 64-bit producer id and starts the flusher thread.
 * `opts` may be NULL. Errors: SLUICE_ENOTFOUND, SLUICE_EINVAL, SLUICE_ENOMEM, SLUICE_ECLOSED,
 * SLUICE_EAGAIN. */
int sluice_producer_new(sluice_client *c, const char *stream,
                        const struct sluice_producer_opts *opts, sluice_producer **out);

/* Queues one record (key, value and attributes are copied; borrowed for the call). The
 * shard is the open one whose hash range holds XXH3-64(key) (docs/PROTOCOL.md); an empty
 * key goes round-robin over the open shards. When a shard is split or merged, the producer
 * learns it from the broker's refusal, describes the stream and moves the records it had
 * not stored to the shards after it (delivery then reports their new shard): every key's
 * records stay in order, nothing acknowledged is moved. An ACK_NONE producer gets no
 * refusal: it describes the stream again every second while it sends, and what it sent to
 * a shard closed in between is not stored (fire and forget). Returns at once; `cb(ctx, ...)` (may be NULL) reports the outcome later. Errors
 * (then cb is not called): SLUICE_EAGAIN (buffer full and not block_when_full), SLUICE_ETOOBIG (key
 * > 256 bytes, attributes over the limits, or the record cannot fit in a batch), SLUICE_EINVAL,
 * SLUICE_ECLOSED (producer being freed). Thread-safe: call from any thread. */
int sluice_produce(sluice_producer *p, const void *key, size_t key_len, const void *value,
                   size_t value_len, const struct sluice_attr *attrs, uint32_t attr_count,
                   sluice_delivery_cb cb, void *ctx);

/* Sends everything buffered now and waits until every record produced before the call
 * has been reported. `timeout_ms` 0 = wait forever. Errors: SLUICE_EAGAIN (timed out).
 * Thread-safe; never from a delivery callback. */
int sluice_producer_flush(sluice_producer *p, uint32_t timeout_ms);

/* Counters since creation (approximate when read concurrently). */
struct sluice_producer_stats {
    uint64_t records_sent;   /* acknowledged OK */
    uint64_t records_failed; /* reported with an error */
    uint64_t batches_sent;
    uint64_t retries;
    uint64_t duplicates; /* batches the broker had already stored (a retry) */
    uint64_t rerouted;   /* records moved off shards that closed (split or merged) */
    uint64_t layout_refreshes; /* describes applied: 1 at creation, then after a refusal
                                * (ACK_NONE: every second while sending) */
};
void sluice_producer_stats(sluice_producer *p, struct sluice_producer_stats *out);

/* Shard ids of the producer's stream (closed ones included), as it last described it: at
 * creation, and again whenever a shard refused a batch because it was split or merged. */
uint32_t sluice_producer_shard_count(const sluice_producer *p);

/* Flushes (no timeout), stops the flusher thread and frees. NULL-safe. Not concurrently
 * with other calls on `p`. */
void sluice_producer_free(sluice_producer *p);

/* ---- consumer ---------------------------------------------------------------------------- */

typedef struct sluice_consumer sluice_consumer;

/* One record from a poll. Every pointer is valid until the next poll (or free) of the
 * consumer that returned it. */
struct sluice_record {
    uint32_t shard;
    uint64_t seq;
    uint64_t timestamp_ms; /* the broker's append time */
    uint64_t produced_ms;  /* the producer's own time */
    const uint8_t *key;
    uint32_t key_len;
    const uint8_t *value;
    uint32_t value_len;
    const struct sluice_attr *attrs;
    uint32_t attr_count;
};

/* Called (from poll, on the consumer's thread) when a shard's position was below the oldest
 * retained record and the consumer jumped from `from_seq` to `to_seq`. */
typedef void (*sluice_trimmed_cb)(void *ctx, uint32_t shard, uint64_t from_seq, uint64_t to_seq);

/* Called from poll (on the consumer's thread) when a group member is given shards
 * (on_assigned) or gives them up (on_revoked). A revoked shard is committed right after
 * the callback returns and then released to its new owner, so the application can flush
 * what it holds for it; with `lost` = 1 the shards were already taken away (the member's
 * session expired, or the group was reset) and cannot be committed any more. */
typedef void (*sluice_rebalance_cb)(void *ctx, const uint32_t *shards, size_t n, int lost);

struct sluice_consumer_opts {
    struct sluice_position start; /* where shards without a checkpoint start (TRIM_HORIZON) */
    const uint32_t *shards;       /* borrowed for new(): read only these; NULL = all, or with a
                                     group: the shards the group assigns to this member */
    uint32_t shards_len;
    uint32_t fetch_max_bytes; /* per fetch; 0 = 4 MiB */
    uint32_t auto_commit_ms;  /* with a group: commit from poll at least this often; 0 = off */
    sluice_trimmed_cb on_trimmed;
    void *on_trimmed_ctx;
    /* A group member (a group and no shard list): */
    uint32_t session_timeout_ms; /* removed from the group when it does not poll for this
                                    long; 1000 .. 300000, 0 = 10000 */
    const char *instance_id;     /* borrowed for new(): static membership - a member back
                                    within its session keeps its shards; NULL = dynamic */
    sluice_rebalance_cb on_assigned;
    sluice_rebalance_cb on_revoked;
    void *rebalance_ctx;
    int trace; /* 1: fetches ask the broker for their stages' times (sluice_consumer_trace) */
};

/* The stages of one fetch (a diagnostic, like enum sluice_produce_trace), CLOCK_MONOTONIC ns. */
enum sluice_fetch_trace {
    SLUICE_FT_SENT,        /* the fetch was sent */
    SLUICE_FT_RECEIVED,    /* broker: the request was read */
    SLUICE_FT_PARKED,      /* broker: it found the tail and waited (long-poll) */
    SLUICE_FT_WOKEN,       /* broker: records became visible and it read again */
    SLUICE_FT_READ_DONE,   /* broker: the read that answers it completed */
    SLUICE_FT_ANSWERED,    /* broker: the answer was queued to send */
    SLUICE_FT_IO_RECEIVED, /* the client's I/O thread had the answer */
    SLUICE_FT_TAKEN,       /* poll, on the application's thread, took it */
    SLUICE_FT_N
};

/* Creates a consumer of `stream`. Without a group or shard list it reads every shard of the
 * stream across resharding: a shard split or merged from others is read only after each of
 * them was read to its end (each key's records in order), shards made after the consumer
 * are found by describing the stream again (every second while a shard is at its tail) and
 * read from their start, and a start time (AT_TIMESTAMP) applies down the lineage; LATEST
 * means the sequences described at creation for closed shards and children. With `group`
 * (may be NULL), shards that have a checkpoint start from it, the others from opts->start. With a group and no shard list the consumer
 * is a member of the group: the broker splits the stream's shards between the group's
 * members, poll reads the shards assigned to this one (none until the first poll) and
 * heartbeats, and a member that stops polling for its session timeout loses its shards to
 * the others. Errors: SLUICE_ENOTFOUND, SLUICE_EINVAL (bad shard list), SLUICE_ENOMEM,
 * SLUICE_ECLOSED, SLUICE_EAGAIN. One thread uses a consumer at a time. */
int sluice_consumer_new(sluice_client *c, const char *stream, const char *group,
                        const struct sluice_consumer_opts *opts, sluice_consumer **out);

/* Moves one shard (or SLUICE_ALL_SHARDS) to `pos`; records already decoded for it are
 * dropped. Errors: SLUICE_ENOTFOUND (shard not read by this consumer). */
int sluice_consumer_seek(sluice_consumer *c, uint32_t shard, const struct sluice_position *pos);

/* Fills up to `max` records into `out` (caller array); *count gets how many. Fetches
 * (long-poll) from all shards round-robin and returns as soon as some records are there or
 * `timeout_ms` passed (*count = 0, SLUICE_OK). Earlier records' memory is released.
 * Errors: SLUICE_ECLOSED (connection lost; call again to reconnect), SLUICE_ENOTFOUND (stream
 * deleted), SLUICE_ECORRUPT (a batch failed its checksum), SLUICE_EAGAIN, broker errors. */
int sluice_consumer_poll(sluice_consumer *c, struct sluice_record *out, size_t max, size_t *count,
                         uint32_t timeout_ms);

/* Commits, for every shard that moved, the sequence after the last record returned by poll;
 * durable when it returns. SLUICE_OK without a group (nothing to do).
 * Errors: SLUICE_ECLOSED, SLUICE_EAGAIN, SLUICE_EFENCED (a group member no longer holds a
 * shard: its records will be read again by the new owner; the other shards were committed),
 * broker errors. */
int sluice_consumer_commit(sluice_consumer *c);

/* 1 when every shard read has returned all records up to the tail seen by its last fetch
 * (and each shard was fetched at least once), else 0. */
int sluice_consumer_caught_up(const sluice_consumer *c);

/* Per-shard state for progress displays: the next sequence to return and the tail seen by
 * the last fetch. Errors: SLUICE_ENOTFOUND. */
int sluice_consumer_shard_state(const sluice_consumer *c, uint32_t shard, uint64_t *next_seq,
                                uint64_t *tail_seq);

/* With opts.trace: the stages (enum sluice_fetch_trace) of the fetch answer that the
 * records of `shard` the last poll returned came from, into ns[SLUICE_FT_N]. Errors:
 * SLUICE_ENOTFOUND (not a shard read, or no traced answer taken yet). */
int sluice_consumer_trace(const sluice_consumer *c, uint32_t shard, uint64_t *ns);

/* Number of shards read (for a group member: held now), and the i-th one's id. */
uint32_t sluice_consumer_shard_count(const sluice_consumer *c);
uint32_t sluice_consumer_shard_id(const sluice_consumer *c, uint32_t i);

/* A group member's id and generation (both from its last join or heartbeat; "" and 0 before
 * the first poll or for a consumer that is no member). The string is valid until the next
 * poll. */
const char *sluice_consumer_member_id(const sluice_consumer *c, uint64_t *generation);

/* Waits for fetches still in flight, frees (no commit: call sluice_consumer_commit first).
 * A dynamic group member leaves the group, so its shards move at once; a static one (with
 * an instance id) stays until its session times out, to keep its shards across a restart.
 * NULL-safe. */
void sluice_consumer_free(sluice_consumer *c);

/* ---- stream consumer groups ------------------------------------------------------------ */

/* A stream consumer group's members now: ids, and the shards each holds. */
struct sluice_group_member {
    char *member_id;
    char *instance_id; /* "" for a dynamic member */
    uint64_t idle_ms;  /* since its last heartbeat */
    uint32_t *shards;
    size_t shards_len;
};
struct sluice_group_info {
    uint64_t generation; /* 0: no active member */
    struct sluice_group_member *members;
    size_t members_len;
};
/* Errors: SLUICE_ENOTFOUND (stream), SLUICE_ECLOSED, SLUICE_EAGAIN. Free with
 * sluice_group_info_free. */
int sluice_group_describe(sluice_client *c, const char *stream, const char *group,
                          struct sluice_group_info **out);
void sluice_group_info_free(struct sluice_group_info *info);

/* Moves every shard's checkpoint of the group to `to` (oldest, latest, a sequence - clamped
 * to the retained range - or a time), backwards too. Refused (SLUICE_EINVAL) while the group
 * has active members unless `force`: then they are removed and resume from the new
 * checkpoints when they rejoin. Errors: SLUICE_ENOTFOUND, SLUICE_EINVAL, SLUICE_ECLOSED. */
int sluice_group_reset(sluice_client *c, const char *stream, const char *group,
                       const struct sluice_position *to, int force);

/* ---- queue groups and topic subscriptions (synchronous; thread-safe) --------------------- */

/* A queue group reads one stream with competing consumers: each record goes to one receiver
 * at a time under a visibility timeout (a lease), is acknowledged (gone for the group),
 * negatively acknowledged (visible again, optionally after a delay) or redelivered when its
 * lease ends. A topic subscription is a queue group on the topic's stream, usually with a
 * filter and starting at SLUICE_LATEST. Sending to a queue or topic is producing to its
 * stream (sluice_producer_new / sluice_produce). All calls here are synchronous and
 * thread-safe: any number of threads may call them on one client. */

#define SLUICE_QUEUE_RECEIVE_MAX 10000u /* records per receive (the protocol's limit) */

struct sluice_queue_group_opts {
    uint32_t visibility_timeout_ms; /* default lease; 0 = broker default (30000) */
    uint32_t max_deliveries;        /* then dead-lettered; 0 = never */
    const char *dead_letter_stream; /* NULL or "" = "<stream>.<group>.dlq" (made on demand) */
    int ordered;                    /* 1: one record per partition key at a time, in order */
    const char *filter;             /* EventBridge-style JSON pattern; NULL or "" = all records */
    struct sluice_position start;   /* where the new group starts (zeroed = TRIM_HORIZON) */
    uint32_t max_inflight;          /* leases per group; 0 = broker default */
    int filter_body;                /* 1: the filter reads the value as a JSON object (nested
                                       fields); 0: the attributes */
};

/* Creates queue group `group` on `stream` (both borrowed). `o` may be NULL (defaults).
 * Errors: SLUICE_ENOTFOUND (no such stream), SLUICE_EEXIST (the group exists), SLUICE_EINVAL (bad
 * name, filter or option), SLUICE_ELIMIT, SLUICE_ECLOSED, SLUICE_EAGAIN (timeout),
 * SLUICE_EUNSUPPORTED (a broker without queue groups), broker errors. */
int sluice_queue_group_create(sluice_client *c, const char *stream, const char *group,
                              const struct sluice_queue_group_opts *o);

/* Deletes a queue group and its state (leases, acks). Records stay in the stream.
 * Errors: SLUICE_ENOTFOUND, SLUICE_ECLOSED, SLUICE_EAGAIN, SLUICE_EUNSUPPORTED, broker errors. */
int sluice_queue_group_delete(sluice_client *c, const char *stream, const char *group);

/* The queue groups (subscriptions) of a stream: *out is an array of *count strings, freed
 * with sluice_groups_free. Errors: SLUICE_ENOTFOUND, SLUICE_ENOMEM, SLUICE_ECLOSED, SLUICE_EAGAIN,
 * SLUICE_EUNSUPPORTED. */
int sluice_queue_groups_list(sluice_client *c, const char *stream, char ***out, size_t *count);

struct sluice_queue_stats {
    uint64_t visible;       /* records ready for delivery (backlog) */
    uint64_t inflight;      /* leased */
    uint64_t delayed;       /* nacked with a delay, not yet visible */
    uint64_t dead_lettered; /* since the group was created */
    uint64_t filtered_out;  /* skipped by the filter */
    uint64_t oldest_age_ms; /* age of the oldest unacknowledged record */
    /* The group's configuration as the broker holds it (defaults filled in or 0). */
    uint32_t visibility_timeout_ms;
    uint32_t max_deliveries;
    char *dead_letter_stream; /* owned by the struct: sluice_queue_stats_fini */
    int ordered;
    char *filter; /* owned by the struct ("" = none) */
    struct sluice_position start;
    uint32_t max_inflight;
    int filter_body; /* the filter reads the value, not the attributes */
};

/* Fills *out (caller's struct; release its strings with sluice_queue_stats_fini, also after
 * an error). Errors: SLUICE_ENOTFOUND (stream or group), SLUICE_ENOMEM, SLUICE_ECLOSED,
 * SLUICE_EAGAIN, SLUICE_EUNSUPPORTED. */
int sluice_queue_stats(sluice_client *c, const char *stream, const char *group,
                       struct sluice_queue_stats *out);
void sluice_queue_stats_fini(struct sluice_queue_stats *s); /* NULL-safe, idempotent */

/* Drops every record the group has not acknowledged yet (visible, delayed and leased):
 * the group continues with records appended afterwards. Errors: SLUICE_ENOTFOUND, SLUICE_ECLOSED,
 * SLUICE_EAGAIN, SLUICE_EUNSUPPORTED, broker errors. */
int sluice_queue_purge(sluice_client *c, const char *stream, const char *group);

/* Redrive: moves the dead-lettered messages of `group` (its dead-letter
 * stream, from the group's stats) back to the stream each came from (its
 * sluice.source_stream attribute, else `stream`), without the sluice.*
 * attributes, up to `max` messages (0 = all there are now). It reads the
 * dead-letter stream with the queue group "sluice.redrive" (created on first
 * use), produces each message durably, then acks it: at-least-once (a crash
 * between the produce and the ack may move a message twice). *moved gets the
 * count. Errors: SLUICE_ENOTFOUND (stream, group), broker and producer errors.
 * Thread-safe; blocks until done. */
int sluice_queue_redrive(sluice_client *c, const char *stream, const char *group, uint64_t max,
                         uint64_t *moved);

/* One received message. All memory belongs to the array returned by sluice_queue_receive
 * and is released by sluice_messages_free; receipt, key and value are NUL-terminated (the
 * NUL is not counted in the lengths). */
struct sluice_message {
    char *receipt; /* names this delivery: pass it to ack / nack / extend */
    uint32_t shard;
    uint64_t seq;
    uint64_t timestamp_ms; /* the broker's append time */
    uint64_t produced_ms;  /* the producer's own time */
    uint8_t *key;
    uint32_t key_len;
    uint8_t *value;
    uint32_t value_len;
    struct sluice_attr *attrs;
    uint32_t attr_count;
    uint32_t delivery_count; /* 1 on the first delivery */
};

/* Receives up to `max` (1 .. SLUICE_QUEUE_RECEIVE_MAX) messages for `group`, each leased
 * for `visibility_timeout_ms` (0 = the group's). When none is visible it waits up to
 * `wait_ms` (long-poll; the broker may cap it) and then returns SLUICE_OK with *count = 0.
 * *out (NULL when *count is 0) is freed with sluice_messages_free.
 * Errors: SLUICE_EINVAL (max out of range), SLUICE_ENOTFOUND (stream or group), SLUICE_ENOMEM,
 * SLUICE_EPROTO (malformed answer), SLUICE_ECLOSED, SLUICE_EAGAIN (timeout), SLUICE_EUNSUPPORTED.
 */
int sluice_queue_receive(sluice_client *c, const char *stream, const char *group, uint32_t max,
                         uint32_t wait_ms, uint32_t visibility_timeout_ms,
                         struct sluice_message **out, size_t *count);
void sluice_messages_free(struct sluice_message *msgs, size_t count); /* NULL-safe */

/* Acknowledges `count` receipts (borrowed): the records are done for the group; answered
 * once the acks are durable. Large lists are sent in several requests. `results` (may be
 * NULL) receives one code per receipt: SLUICE_OK, or SLUICE_ENOTFOUND when the receipt's lease had
 * ended (the record may be delivered again), or the request's error.
 * Returns SLUICE_OK when every receipt succeeded, else the first failing receipt's code (its
 * reason in sluice_last_error()). Errors: SLUICE_ENOTFOUND, SLUICE_EINVAL (count 0),
 * SLUICE_ECLOSED, SLUICE_EAGAIN, SLUICE_EPROTO (a result count that does not match),
 * SLUICE_EUNSUPPORTED, broker errors. */
int sluice_queue_ack(sluice_client *c, const char *stream, const char *group,
                     const char *const *receipts, size_t count, int *results);

/* Gives leased records back: visible again after `delay_ms` (0 = now); their delivery
 * count grows on the next delivery. Results and errors as sluice_queue_ack. */
int sluice_queue_nack(sluice_client *c, const char *stream, const char *group,
                      const char *const *receipts, size_t count, uint32_t delay_ms, int *results);

/* Sets the leases of the receipts to end `visibility_timeout_ms` from now (for work that
 * takes longer than the lease). Results and errors as sluice_queue_ack. */
int sluice_queue_extend(sluice_client *c, const char *stream, const char *group,
                        const char *const *receipts, size_t count, uint32_t visibility_timeout_ms,
                        int *results);

/* ---- push targets (synchronous; thread-safe) ------------------------------------------------ */

/* The broker delivers a queue group's records to an HTTP endpoint by itself: POSTs of up to
 * batch_size records in the shape of `format`, acked on a 2xx (AWS Lambda's partial batch
 * response honoured), released with exponential backoff otherwise; the group's max_deliveries
 * and dead-letter stream apply. Needs the `admin` right on the stream. */
struct sluice_target {
    const char *stream;
    const char *group;  /* an existing queue group or subscription of stream */
    const char *url;    /* http:// or https:// */
    const char *format; /* "sluice" (NULL), "sqs", "kinesis", "sns", "eventbridge" */
    uint32_t batch_size;      /* 1 .. 10000; 0 = 10 (eventbridge: always 1) */
    uint32_t batch_window_ms; /* wait up to this for a full batch; 0 = send what is there */
    uint32_t concurrency;     /* POSTs in flight; 0 = 1 */
    uint32_t timeout_ms;      /* per POST; 0 = 30 s */
    uint32_t retry_base_ms;   /* first backoff; 0 = 1 s */
    uint32_t retry_max_ms;    /* backoff cap; 0 = 5 min */
    int insecure;             /* 1: https without verifying the peer */
};

/* Adds the target, or replaces the group's target. Errors: SLUICE_EINVAL (a setting; the
 * message names it), SLUICE_ENOTFOUND (no such stream or group), SLUICE_ELIMIT,
 * SLUICE_EDENIED, SLUICE_EUNSUPPORTED (push off on the broker), SLUICE_ECLOSED, SLUICE_EAGAIN. */
int sluice_target_set(sluice_client *c, const struct sluice_target *t);

/* Errors: SLUICE_ENOTFOUND (no target on the group), others as sluice_target_set. */
int sluice_target_remove(sluice_client *c, const char *stream, const char *group);

struct sluice_target_status {
    struct sluice_target target; /* strings owned by the array */
    uint32_t inflight;           /* batches leased, not settled */
    uint64_t delivered;          /* records the target took (since the broker started) */
    uint64_t released;           /* records released for a retry */
    uint64_t batches_ok, batches_failed;
    uint32_t failures;        /* consecutive failed batches */
    uint64_t paused_ms;       /* left of the backoff pause; 0 = flowing */
    int last_status;          /* HTTP status of the last answer; 0 = none */
    const char *last_error;   /* "" = none */
    uint64_t last_latency_us; /* of the last POST */
};

/* The targets on `stream` (*out freed with sluice_target_list_free). Errors as
 * sluice_target_set. */
int sluice_target_list(sluice_client *c, const char *stream, struct sluice_target_status **out,
                       size_t *count);
void sluice_target_list_free(struct sluice_target_status *s, size_t count); /* NULL-safe */

/* ---- cluster (#14) ---- */

struct sluice_broker_info {
    uint32_t node_id;
    const char *address;      /* native protocol, HOST:PORT as advertised ("" for a single broker) */
    const char *http_address; /* "" without an HTTP listener */
    const char *version;
    const char *state;        /* "up" (the broker that answered), "alive", "joining", "disconnected" */
    uint64_t start_time_ms;   /* wall clock */
    int self;                 /* the broker that answered */
};

struct sluice_cluster_status {
    int cluster;      /* 0: a single broker (no --cluster); brokers[] holds it alone */
    uint32_t node_id; /* the answering broker's id (0 for a single broker) */
    int connected;    /* its ZooKeeper session is connected */
    size_t n_brokers;
    struct sluice_broker_info *brokers; /* sorted by node id */
    int controller;            /* the answering broker is the cluster's controller now */
    int32_t controller_epoch;  /* its controller epoch (0 when not the controller) */
};

/* The live brokers as the connected broker sees them (ClusterStatus). *out is freed with
 * sluice_cluster_status_free. Errors: SLUICE_ECLOSED, SLUICE_EAGAIN, SLUICE_EUNSUPPORTED (a
 * broker older than cluster mode), SLUICE_ENOMEM. */
int sluice_cluster_status(sluice_client *c, struct sluice_cluster_status **out);
void sluice_cluster_status_free(struct sluice_cluster_status *s); /* NULL-safe */

#define SLUICE_REPLICAS_MAX     7u  /* replicas of one shard at most */
#define SLUICE_METADATA_STREAMS 64u /* streams one sluice_cluster_metadata may name */

/* Who leads one shard, as the answering broker last read it (Metadata). */
struct sluice_shard_route {
    uint32_t shard;
    int32_t leader;       /* node id; -1: no leader now (offline) */
    int32_t leader_epoch; /* 0 for a shard that is not replicated */
    int open;             /* takes appends (0: closed by a split or merge) */
    uint32_t n_replicas;
    int32_t replicas[SLUICE_REPLICAS_MAX]; /* the first is the preferred leader */
    uint32_t n_isr;
    int32_t isr[SLUICE_REPLICAS_MAX];      /* in-sync replicas, the leader included */
    /* The followers' lag, only in an answer from the shard's leader (n_lag 0 otherwise): ask
     * each broker to see every shard's (sluice cluster status does). */
    uint32_t n_lag;
    struct sluice_replica_lag {
        int32_t node;
        uint64_t behind;           /* records it has not acknowledged durable */
        uint64_t caught_up_ms_ago; /* since it last reached the leader's end */
    } lag[SLUICE_REPLICAS_MAX];
    /* A reassignment in progress (n_target > 0): the replicas the shard moves to; replicas[]
     * holds the old and the new ones until the controller switches (docs/REPLICATION.md). */
    uint32_t n_target;
    int32_t target[SLUICE_REPLICAS_MAX];
};

struct sluice_stream_route {
    const char *name;
    size_t n_shards;
    struct sluice_shard_route *shards; /* ascending ids; ids retention removed left out */
};

struct sluice_metadata {
    int cluster;      /* 0: a single broker, which leads every shard itself */
    uint32_t node_id; /* the answering broker's id (0 for a single broker) */
    size_t n_brokers;
    struct sluice_broker_info *brokers; /* the live brokers; `self` marks the one that answered
                                         * (a single broker: itself alone, address "") */
    size_t n_streams;
    struct sluice_stream_route *streams; /* in the order asked */
};

/* The brokers and, for each of `streams` (n <= SLUICE_METADATA_STREAMS; borrowed; n = 0:
 * only the brokers), who leads each shard (Metadata, docs/PROTOCOL.md). The client also
 * routes by the answer (produces and fetches go to each shard's leader). *out is freed
 * with sluice_metadata_free. Errors: SLUICE_ENOTFOUND (a stream the broker does not have),
 * SLUICE_EDENIED, SLUICE_ELIMIT (too many streams), SLUICE_ETOOBIG (the answer would not
 * fit a frame: ask fewer), SLUICE_EUNSUPPORTED (a broker older than Metadata),
 * SLUICE_EPROTO (an answer that does not hold together), SLUICE_ECLOSED, SLUICE_EAGAIN,
 * SLUICE_ENOMEM. Thread-safe. */
int sluice_cluster_metadata(sluice_client *c, const char *const *streams, size_t n,
                            struct sluice_metadata **out);
void sluice_metadata_free(struct sluice_metadata *m); /* NULL-safe */

/* Asks the cluster to move shard `shard` of `stream` to the replicas ids[0, n) (node ids, the
 * first the preferred leader; ReassignShard, docs/PROTOCOL.md): the new ones copy the shard
 * and join the ISR, then the controller switches the shard to exactly these (a leader not
 * among them hands over). Returns once the request is in ZooKeeper: watch the move with
 * sluice_cluster_metadata (n_target > 0 while it lasts). Needs the admin right on the stream.
 * Errors: SLUICE_EINVAL (a broker not live, named twice, fewer than min_insync_replicas, too
 * many), SLUICE_ECONFLICT (another move of the shard in progress), SLUICE_ENOTFOUND (no such
 * replicated shard), SLUICE_EUNSUPPORTED (a single broker, or one older than reassignment),
 * SLUICE_EAGAIN / SLUICE_ENOT_LEADER (retry), SLUICE_EDENIED, SLUICE_ECLOSED, SLUICE_ENOMEM.
 * A move in progress to the same replicas is SLUICE_OK. Thread-safe. */
int sluice_cluster_reassign(sluice_client *c, const char *stream, uint32_t shard,
                            const int32_t *ids, size_t n);

/* Asks the cluster to cancel the move of shard `shard` of `stream` in progress (ReassignShard
 * with cancel): the shard goes back to the replicas it had before the move, the added ones
 * stop serving it, and a leader among the added ones hands over to an old replica in sync
 * (a new epoch: clients retry on it). For a move whose target can never catch up (a new
 * broker lost for good). Returns once the request is in ZooKeeper; the controller may still
 * find the move ended meanwhile, or no old replica alive and in sync (cancelling would drop
 * the only copies of acknowledged records: the move goes on) - sluice_cluster_metadata shows
 * the outcome (n_target 0; replicas the old set when cancelled). Needs the admin right.
 * Errors: SLUICE_ENOTFOUND (no move of the shard in progress: nothing to cancel; or no such
 * replicated shard - the message says which), SLUICE_EINVAL (no replica from before the move
 * alive in the ISR, as the broker asked sees it: the move goes on; a move started by a broker
 * older than cancelling; or a broker older than cancelling, which reads the request as a move
 * to no replicas), SLUICE_ECONFLICT (another request for the shard waits for the controller),
 * SLUICE_EUNSUPPORTED (a single broker), SLUICE_EAGAIN / SLUICE_ENOT_LEADER (retry),
 * SLUICE_EDENIED, SLUICE_ECLOSED, SLUICE_ENOMEM. Thread-safe. */
int sluice_cluster_reassign_cancel(sluice_client *c, const char *stream, uint32_t shard);

/* ---- AWS API calls over the native connection ---- */

/* Runs one call of an AWS API the broker serves on its HTTP listener, over this connection,
 * as its authenticated user (no SigV4): `service` "events" (EventBridge) with `action`
 * e.g. "PutRule" and `body` its JSON request (`len` bytes). *status gets the HTTP status
 * the API answered and *out its body (NUL-terminated, *out_len bytes; free()), an AWS
 * error document when *status is not 2xx. Errors (no answer): SLUICE_EUNSUPPORTED (the
 * broker has no HTTP listener, or predates the call), SLUICE_ENOTFOUND (no such service),
 * SLUICE_ETOOBIG, SLUICE_ECLOSED, SLUICE_EAGAIN, SLUICE_ENOMEM. */
int sluice_api_call(sluice_client *c, const char *service, const char *action, const void *body,
                    size_t len, int *status, char **out, size_t *out_len);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif
