/* http.h - the push targets' HTTP client: one thread running libcurl's multi
 * interface.
 *
 * Why a thread of its own and not the main loop: the main loop already does
 * every connection's protocol work (docs/ARCHITECTURE.md); a push adds JSON
 * rendering of up to 10,000 records, TLS handshakes and DNS, which would
 * stall every client behind them. Here they run on their own thread; the
 * loop hands over whole batches and takes back whole results, one wake-up
 * per batch, never per record. libcurl keeps connections alive in the multi
 * handle's cache, so consecutive POSTs to one target reuse one connection
 * (TLS included); peers are verified unless a target says `insecure`.
 *
 * A call's life: the loop fills it and submits it (any thread may submit);
 * on the HTTP thread `prepare` runs (renders the body), the POST is made,
 * then `finish` runs (reads the answer); the call is then on the done list
 * and `wake_fd` (an eventfd) is written; the loop takes the done list with
 * sl_push_http_done and owns the calls again.
 */
#ifndef SL_PUSH_HTTP_H
#define SL_PUSH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_PUSH_ANSWER_MAX (1u << 20) /* bytes of an answer kept (the rest is read, dropped) */
#define SL_PUSH_HEADER_LINE_MAX 1024u /* a call's header line (longer ones are left out) */

struct sl_push_http;
struct sl_push_call;

typedef int (*sl_push_prepare_fn)(struct sl_push_call *c); /* SL_OK or: fail, no POST */
typedef void (*sl_push_finish_fn)(struct sl_push_call *c);

struct sl_push_call {
    /* set by the submitter */
    const char *url; /* borrowed until done */
    bool insecure;
    uint32_t timeout_ms;
    sl_push_prepare_fn prepare; /* HTTP thread: sets body/body_len; may be NULL */
    sl_push_finish_fn finish;   /* HTTP thread, after the answer; may be NULL */
    void *ctx;
    char *body; /* freed with the call by its owner */
    size_t body_len;
    char *headers; /* NULL, or "Name: value\n" lines replacing the defaults of those names
                    * (set by prepare; freed with the call by its owner) */
    /* set by the HTTP thread */
    long status;     /* HTTP status; 0 when no answer came */
    int failed;      /* SL_OK, or why there is no usable answer (SL_EIO, SL_ECLOSED...) */
    char error[256]; /* a transport error, for logs and stats ("" when none) */
    char *answer;    /* the answer's body (malloc'd, NUL-terminated), or NULL */
    size_t answer_len;
    uint64_t latency_us;
    struct sl_push_call *next; /* the module's lists */
};

/* Starts the thread. Errors: SL_ENOMEM, SL_ESYS (curl or the thread could
 * not start: `why` says which). */
int sl_push_http_start(int wake_fd, struct sl_push_http **out, char *why, size_t why_len);

/* Hands `c` to the HTTP thread. Any thread. */
void sl_push_http_submit(struct sl_push_http *h, struct sl_push_call *c);

/* Takes every finished call (a list through `next`, NULL when none). */
struct sl_push_call *sl_push_http_done(struct sl_push_http *h);

/* Stops the thread: calls not yet answered finish with SL_ECLOSED and are
 * left on the done list. */
void sl_push_http_stop(struct sl_push_http *h);
/* Frees the client (after stop); the done list must have been taken. */
void sl_push_http_free(struct sl_push_http *h);

#endif
