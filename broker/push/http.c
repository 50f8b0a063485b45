/* http.c - the push targets' HTTP thread on libcurl's multi interface (see
 * http.h). libcurl is included here only.
 *
 * Ownership: a call belongs to the submitter until sl_push_http_submit, to
 * this module (the `incoming` list, then a curl easy handle, then the `done`
 * list) until sl_push_http_done returns it. Both lists are under `lock`;
 * everything else here is the HTTP thread's.
 */
#include "broker/push/http.h"

#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/thread.h"

#include <curl/curl.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define POLL_MS 1000 /* the thread's longest sleep when idle (a submit wakes it) */

struct sl_push_http {
    CURLM *multi;
    struct curl_slist *headers;
    pthread_t thread;
    bool started;
    int wake_fd;
    pthread_mutex_t lock;
    struct sl_push_call *incoming; /* lock */
    struct sl_push_call *done;     /* lock */
    atomic_bool stopping;
    struct inflight *running; /* calls in curl (the thread's) */
};

/* A call in curl: its easy handle's private data. */
struct inflight {
    struct sl_push_call *call;
    CURL *easy;
    struct curl_slist *headers; /* the call's own list, or NULL: the defaults */
    uint64_t start_ns;
    struct inflight *prev, *next;
    char errbuf[CURL_ERROR_SIZE];
};

static size_t on_answer(char *data, size_t size, size_t nmemb, void *ud)
{
    struct sl_push_call *c = ud;
    size_t n = size * nmemb;
    size_t keep = c->answer_len < SL_PUSH_ANSWER_MAX ? SL_PUSH_ANSWER_MAX - c->answer_len : 0;
    keep = n < keep ? n : keep;
    if (keep > 0) {
        char *a = realloc(c->answer, c->answer_len + keep + 1);
        if (a == NULL) {
            return 0; /* curl fails the transfer: CURLE_WRITE_ERROR */
        }
        memcpy(a + c->answer_len, data, keep);
        c->answer_len += keep;
        a[c->answer_len] = '\0';
        c->answer = a;
    }
    return n; /* the rest is read and dropped: the answer is bounded */
}

static void finish_call(struct sl_push_http *h, struct sl_push_call *c)
{
    if (c->finish != NULL) {
        c->finish(c);
    }
    pthread_mutex_lock(&h->lock);
    c->next = h->done;
    h->done = c;
    pthread_mutex_unlock(&h->lock);
}

static void fail_call(struct sl_push_http *h, struct sl_push_call *c, int err, const char *what)
{
    c->failed = err;
    snprintf(c->error, sizeof(c->error), "%s", what);
    finish_call(h, c);
}

/* Whether header line `a` and line `b` (ended by '\n' or NUL) have one name. */
static bool same_name(const char *a, const char *b)
{
    size_t n = strcspn(a, ":");
    return n == strcspn(b, ":\n") && b[n] == ':' && strncasecmp(a, b, n) == 0;
}

static const char *next_line(const char *l)
{
    l += strcspn(l, "\n");
    return *l == '\n' ? l + 1 : l;
}

/* The defaults minus those the call names, then the call's lines. */
static struct curl_slist *call_headers(const struct sl_push_http *h, const char *lines)
{
    struct curl_slist *list = NULL, *next = NULL;
    bool ok = true;
    for (const struct curl_slist *d = h->headers; ok && d != NULL; d = d->next) {
        bool replaced = false;
        for (const char *l = lines; *l != '\0' && !replaced; l = next_line(l)) {
            replaced = same_name(d->data, l);
        }
        if (!replaced) {
            ok = (next = curl_slist_append(list, d->data)) != NULL;
            list = ok ? next : list;
        }
    }
    for (const char *l = lines; ok && *l != '\0'; l = next_line(l)) {
        size_t n = strcspn(l, "\n");
        char line[SL_PUSH_HEADER_LINE_MAX];
        if (n > 0 && n < sizeof(line)) {
            memcpy(line, l, n);
            line[n] = '\0';
            ok = (next = curl_slist_append(list, line)) != NULL;
            list = ok ? next : list;
        }
    }
    if (!ok) {
        curl_slist_free_all(list);
        return NULL;
    }
    return list;
}

static void start_call(struct sl_push_http *h, struct sl_push_call *c)
{
    c->status = 0;
    c->failed = SL_OK;
    c->error[0] = '\0';
    if (c->prepare != NULL && c->prepare(c) != SL_OK) {
        fail_call(h, c, SL_ENOMEM, "no memory to build the request body");
        return;
    }
    struct inflight *in = calloc(1, sizeof(*in));
    CURL *e = in != NULL ? curl_easy_init() : NULL;
    if (e == NULL) {
        free(in);
        fail_call(h, c, SL_ENOMEM, "no memory for the request");
        return;
    }
    in->call = c;
    in->easy = e;
    if (c->headers != NULL && (in->headers = call_headers(h, c->headers)) == NULL) {
        curl_easy_cleanup(e);
        free(in);
        fail_call(h, c, SL_ENOMEM, "no memory for the request headers");
        return;
    }
    in->start_ns = sl_clock_mono_ns();
    curl_easy_setopt(e, CURLOPT_URL, c->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body != NULL ? c->body : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, in->headers != NULL ? in->headers : h->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->timeout_ms < 10000 ? c->timeout_ms : 10000));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect is an answer, not a hop */
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_answer);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, in->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, in);
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        curl_slist_free_all(in->headers);
        free(in);
        fail_call(h, c, SL_ENOMEM, "curl refused the request");
        return;
    }
    in->next = h->running;
    if (h->running != NULL) {
        h->running->prev = in;
    }
    h->running = in;
}

/* A transfer ended: `code` from curl, or `closing` when the broker stops. */
static void end_transfer(struct sl_push_http *h, struct inflight *in, CURLcode code, bool closing)
{
    struct sl_push_call *c = in->call;
    c->latency_us = (sl_clock_mono_ns() - in->start_ns) / 1000u;
    if (closing) {
        c->failed = SL_ECLOSED;
        snprintf(c->error, sizeof(c->error), "the broker is stopping");
    } else if (code == CURLE_OK) {
        curl_easy_getinfo(in->easy, CURLINFO_RESPONSE_CODE, &c->status);
    } else {
        c->failed = code == CURLE_OPERATION_TIMEDOUT ? SL_EAGAIN : SL_EIO;
        snprintf(c->error, sizeof(c->error), "%s",
                 in->errbuf[0] != '\0' ? in->errbuf : curl_easy_strerror(code));
    }
    curl_multi_remove_handle(h->multi, in->easy);
    curl_easy_cleanup(in->easy);
    curl_slist_free_all(in->headers);
    if (in->prev != NULL) {
        in->prev->next = in->next;
    } else {
        SL_ASSERT(h->running == in);
        h->running = in->next;
    }
    if (in->next != NULL) {
        in->next->prev = in->prev;
    }
    free(in);
    finish_call(h, c);
}

static void wake_loop(struct sl_push_http *h)
{
    uint64_t one = 1;
    ssize_t w = write(h->wake_fd, &one, sizeof(one));
    (void)w; /* a full counter still wakes the reader */
}

/* Takes a whole list (incoming or done) from under the lock. */
static struct sl_push_call *take_list(struct sl_push_http *h, struct sl_push_call **list)
{
    pthread_mutex_lock(&h->lock);
    struct sl_push_call *taken = *list;
    *list = NULL;
    pthread_mutex_unlock(&h->lock);
    return taken;
}

static void *run(void *arg)
{
    struct sl_push_http *h = arg;
    while (!atomic_load(&h->stopping)) {
        struct sl_push_call *list = take_list(h, &h->incoming);
        while (list != NULL) {
            struct sl_push_call *c = list;
            list = c->next;
            start_call(h, c);
        }
        int still = 0;
        curl_multi_perform(h->multi, &still);
        bool finished = false;
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
            if (m->msg == CURLMSG_DONE) {
                struct inflight *in = NULL;
                curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&in);
                SL_ASSERT(in != NULL && in->easy == m->easy_handle);
                end_transfer(h, in, m->data.result, false);
                finished = true;
            }
        }
        pthread_mutex_lock(&h->lock);
        finished = finished || h->done != NULL;
        pthread_mutex_unlock(&h->lock);
        if (finished) {
            wake_loop(h);
        }
        curl_multi_poll(h->multi, NULL, 0, POLL_MS, NULL);
    }
    return NULL;
}

static void global_init(void)
{
    /* Once per process, before any other curl call (it is not thread-safe). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        sl_error("push", "curl_global_init failed: push targets will fail their calls");
    }
}

int sl_push_http_start(int wake_fd, struct sl_push_http **out, char *why, size_t why_len)
{
    *out = NULL;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_init);
    struct sl_push_http *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        snprintf(why, why_len, "out of memory");
        return SL_ENOMEM;
    }
    h->wake_fd = wake_fd;
    pthread_mutex_init(&h->lock, NULL);
    h->multi = curl_multi_init();
    h->headers = curl_slist_append(NULL, "Content-Type: application/json");
    h->headers = h->headers != NULL ? curl_slist_append(h->headers, "User-Agent: sluiced") : NULL;
    /* No "Expect: 100-continue" (curl adds it past 1 KiB): a round trip per POST, and up to
     * a second's wait on endpoints that never answer it. */
    h->headers = h->headers != NULL ? curl_slist_append(h->headers, "Expect:") : NULL;
    if (h->multi == NULL || h->headers == NULL) {
        snprintf(why, why_len, "libcurl could not start (out of memory?)");
        sl_push_http_free(h);
        return SL_ESYS;
    }
    int rc = sl_thread_start(&h->thread, run, h);
    if (rc != SL_OK) {
        snprintf(why, why_len, "cannot start the push thread: %s", sl_strerror(rc));
        sl_push_http_free(h);
        return rc;
    }
    h->started = true;
    *out = h;
    return SL_OK;
}

void sl_push_http_submit(struct sl_push_http *h, struct sl_push_call *c)
{
    pthread_mutex_lock(&h->lock);
    c->next = h->incoming;
    h->incoming = c;
    pthread_mutex_unlock(&h->lock);
    curl_multi_wakeup(h->multi);
}

struct sl_push_call *sl_push_http_done(struct sl_push_http *h)
{
    return take_list(h, &h->done);
}

void sl_push_http_stop(struct sl_push_http *h)
{
    if (h == NULL || !h->started) {
        return;
    }
    atomic_store(&h->stopping, true);
    curl_multi_wakeup(h->multi);
    pthread_join(h->thread, NULL);
    h->started = false;
    /* What curl still holds, and what was never started, ends here. */
    while (h->running != NULL) {
        end_transfer(h, h->running, CURLE_OK, true);
    }
    struct sl_push_call *list = take_list(h, &h->incoming);
    while (list != NULL) {
        struct sl_push_call *c = list;
        list = c->next;
        fail_call(h, c, SL_ECLOSED, "the broker is stopping");
    }
}

void sl_push_http_free(struct sl_push_http *h)
{
    if (h == NULL) {
        return;
    }
    SL_ASSERT(!h->started && h->done == NULL && h->incoming == NULL && h->running == NULL);
    curl_slist_free_all(h->headers);
    if (h->multi != NULL) {
        curl_multi_cleanup(h->multi);
    }
    pthread_mutex_destroy(&h->lock);
    free(h);
}
