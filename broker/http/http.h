/* http.h - a transport-independent HTTP/1.1 + HTTP/2 (h2c) server session.
 *
 * A byte-in / byte-out state machine: no sockets, no threads, no clocks. The
 * owner of the connection feeds received bytes in (sl_http_session_feed); the
 * session emits output through callbacks->out, which copies the bytes into the
 * connection's send queue before returning. Complete requests go up through
 * callbacks->on_request; the application answers later, in any order, with
 * sl_http_respond (whole body) or sl_http_respond_begin/_data/_end (streaming).
 *
 * Protocols: HTTP/1.0 and 1.1 (keep-alive, pipelining with answers sent in
 * request order, chunked bodies, Expect: 100-continue, HEAD); HTTP/2 over
 * cleartext by prior knowledge (the client preface at connection start) or by
 * `Upgrade: h2c` on a body-less HTTP/1.1 request (the request becomes stream 1).
 *
 * Threading: a session is used by one thread at a time; every function here
 * and every callback runs on the caller's thread, synchronously. Callbacks may
 * call sl_http_respond* (also from inside on_request); they must not call
 * sl_http_session_feed or sl_http_session_free.
 *
 * Memory: bounded per session by sl_http_limits (see there); request structs
 * and everything they point to are borrowed from the session.
 */
#ifndef SL_HTTP_H
#define SL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_http_session;

/* Raw header bytes per request (request line/pseudo-headers + names + values). */
#define SL_HTTP_HEADER_BYTES_DEFAULT (16u << 10)
/* Header fields per request; more is treated as headers too large (431). */
#define SL_HTTP_HEADER_COUNT_MAX 128u
/* Largest single value accepted for any limit (keeps offsets in uint32_t). */
#define SL_HTTP_LIMIT_BYTES_MAX (1u << 30)

struct sl_http_header {
    const char *name; /* lower-case in requests; NUL-terminated */
    uint32_t name_len;
    const char *value; /* NUL-terminated */
    uint32_t value_len;
};

/* A complete request. Every pointer is borrowed from the session and stays
 * valid until the request is answered completely (sl_http_respond, or
 * sl_http_respond_end), until on_stream_closed reports the id, or until the
 * session is freed, whichever comes first. */
struct sl_http_request {
    uint32_t id;      /* h2: stream id; h1: request number on the connection (1, 2, ...) */
    uint8_t version;  /* 10, 11 or 20 */
    const char *method; /* NUL-terminated, e.g. "GET" */
    const char *path;   /* NUL-terminated request target, query string included */
    const struct sl_http_header *headers; /* h2: pseudo-headers left out, :authority as host */
    uint32_t n_headers;
    const uint8_t *body; /* whole body, de-chunked; never NULL (points at "" when empty) */
    uint32_t body_len;
};

struct sl_http_limits {
    uint32_t header_bytes_max; /* per request; over it: 431 (h1), 431 on the stream (h2) */
    uint32_t body_bytes_max;   /* per request; over it: 413 (h1), 413 on the stream (h2) */
    uint32_t requests_max;     /* h1: requests received and not yet fully sent; h2:
                                * SETTINGS_MAX_CONCURRENT_STREAMS */
    uint32_t out_bytes_max;    /* per streaming response: buffered bytes before SL_EAGAIN */
};

struct sl_http_callbacks {
    /* A complete request (required). `req` is borrowed (see sl_http_request). */
    void (*on_request)(void *ctx, struct sl_http_session *s, const struct sl_http_request *req);
    /* Copies `len` bytes (borrowed) to the connection's send queue (required).
     * Returns SL_OK or SL_ENOMEM; SL_ENOMEM makes the session fatal. */
    int (*out)(void *ctx, const void *data, size_t len);
    /* Optional. The peer reset or closed (h2 RST_STREAM, GOAWAY) a stream the
     * application still owes an answer: stop working on it. The request is
     * freed when this returns; later respond calls for `id` return SL_ENOTFOUND. */
    void (*on_stream_closed)(void *ctx, struct sl_http_session *s, uint32_t id);
    /* Optional. A response whose sl_http_respond_data returned SL_EAGAIN has
     * drained to at most half of out_bytes_max: send more. */
    void (*on_drain)(void *ctx, struct sl_http_session *s, uint32_t id);
};

/* Creates a session. `lim`, `cb` are copied; `ctx` is borrowed and passed to
 * every callback. *out returns owned (free with sl_http_session_free).
 * Errors: SL_EINVAL (a limit is 0 or over SL_HTTP_LIMIT_BYTES_MAX, a required
 * callback is NULL), SL_ENOMEM. */
int sl_http_session_new(const struct sl_http_limits *lim, const struct sl_http_callbacks *cb,
                        void *ctx, struct sl_http_session **out);

/* Frees the session and every outstanding request (NULL-safe). No callbacks run. */
void sl_http_session_free(struct sl_http_session *s);

/* Feeds `len` received bytes (borrowed). Callbacks run inside. Returns SL_OK
 * (all bytes taken) or an error after which the session reads no more: stop
 * reading, and close once sl_http_session_want_close() (answers to earlier
 * requests still go out first) or at once:
 *   SL_EPROTO   malformed input: h1 answered 400 (or 505/501), h2 sent GOAWAY
 *   SL_ETOOBIG  h1 headers or body over the limits: 431 / 413 answered
 *   SL_ELIMIT   bytes fed while want_read() was false exceeded the buffer
 *   SL_ECLOSED  the session had already stopped reading (bytes dropped)
 *   SL_ENOMEM   allocation or callbacks->out failed */
int sl_http_session_feed(struct sl_http_session *s, const uint8_t *data, size_t len);

/* False while h1 has requests_max requests awaiting answers (back-pressure;
 * becomes true again inside a respond call), and after an error, Connection:
 * close or GOAWAY. HTTP/2 keeps reading while streams are busy: WINDOW_UPDATEs
 * must arrive for responses to progress, and MAX_CONCURRENT_STREAMS bounds it. */
bool sl_http_session_want_read(const struct sl_http_session *s);

/* True when all output has been handed to `out` and the connection should be
 * closed (Connection: close answered, HTTP/1.0 without keep-alive, GOAWAY
 * sent and streams done, fatal error). */
bool sl_http_session_want_close(const struct sl_http_session *s);

/* True while a request has started arriving and is not complete (for the
 * caller's slowloris timeout). */
bool sl_http_session_partial(const struct sl_http_session *s);

/* Answers request `id` with a whole response. `hdrs` (names lower-case,
 * without content-length/transfer-encoding/connection) and `body` are borrowed
 * and copied. Adds server and content-length; HEAD answers carry no body.
 * Errors: SL_ENOTFOUND (no request `id` awaiting an answer), SL_EINVAL (status
 * outside 200-599, a bad header name/value), SL_ENOMEM, SL_EPROTO (h2 refused). */
int sl_http_respond(struct sl_http_session *s, uint32_t id, int status,
                    const struct sl_http_header *hdrs, uint32_t n, const void *body,
                    size_t body_len);

/* Starts a streaming response (h1: chunked, or close-delimited for HTTP/1.0;
 * h2: DATA frames). Errors as sl_http_respond. */
int sl_http_respond_begin(struct sl_http_session *s, uint32_t id, int status,
                          const struct sl_http_header *hdrs, uint32_t n);

/* Appends body bytes (borrowed, copied). Errors: SL_EAGAIN (out_bytes_max
 * already buffered for this response: wait for on_drain; nothing was taken),
 * SL_ENOTFOUND (no streaming response `id`), SL_ENOMEM. */
int sl_http_respond_data(struct sl_http_session *s, uint32_t id, const void *data, size_t len);

/* Ends a streaming response. Errors: SL_ENOTFOUND, SL_ENOMEM. */
int sl_http_respond_end(struct sl_http_session *s, uint32_t id);

#endif
