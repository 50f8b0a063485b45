/* native.c - the native protocol's framing on a broker/net connection (see
 * native.h). A Produce frame is parsed in place (pview.h) and its batch
 * referenced in the receive buffer, pinned until the engine is done with it
 * (h_data.c); every other frame is unpacked by protobuf-c. */
#include "broker/native/native.h"

#include "broker/native/handlers.h"
#include "broker/native/pview.h"
#include "broker/native/reply.h"
#include "common/error.h"
#include "common/log.h"

#include <stdio.h>
#include <sys/socket.h>

/* The frame length limit now: a client not yet authenticated sends small frames. */
static uint32_t frame_max(const struct sl_native *nat, const struct sl_conn *c)
{
    return sl_native_authed(nat, c) ? nat->cfg.max_frame_bytes : SL_NATIVE_PREAUTH_FRAME_BYTES;
}

/* A frame whose length cannot be taken: answered, then the connection closes. */
static void bad_frame(struct sl_conn *c, const struct sl_native *nat, int rc, uint32_t max)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "%s: frame length exceeds %s (%u) or is 0",
             rc == SL_ETOOBIG ? "frame too large" : "bad frame",
             max == nat->cfg.max_frame_bytes ? "max_frame_bytes"
                                             : "the limit before authentication",
             max);
    sl_warn("net", "conn %llu: %s; closing", (unsigned long long)c->id, msg);
    sl_native_respond_error(c, 0, rc, msg);
    sl_conn_close_after_send(c); /* cannot resynchronise */
}

/* On a connection another loop serves (net.h, proto->split): the next whole
 * frame's length. Reads only the connection's flags (as the main loop last
 * sent them: authenticated or not) and settings that never change. */
static int native_split(struct sl_conn *c, const uint8_t *data, size_t len, uint32_t *msg_len)
{
    const struct sl_native *nat = c->ctx;
    uint32_t max = frame_max(nat, c);
    uint32_t flen = 0;
    int rc = sl_frame_peek(data, len, max, &flen);
    if (rc == SL_EAGAIN) {
        return rc;
    }
    if (rc != SL_OK) {
        bad_frame(c, nat, rc, max);
        return rc;
    }
    if (len - SL_FRAME_HEADER_BYTES < flen) {
        sl_conn_need(c, flen + SL_FRAME_HEADER_BYTES); /* closes on failure */
        return SL_EAGAIN;
    }
    *msg_len = SL_FRAME_HEADER_BYTES + flen;
    return SL_OK;
}

/* Cuts whole frames and dispatches them while the connection may take more
 * requests; returns the bytes used (a partial frame stays buffered). */
static size_t native_recv(struct sl_conn *c, const uint8_t *data, size_t len)
{
    struct sl_native *nat = c->ctx;
    size_t off = 0;
    while (!sl_conn_is_closed(c) && c->requests < nat->cfg.max_inflight) {
        uint32_t flen = 0;
        uint32_t max = frame_max(nat, c);
        int rc = sl_frame_peek(data + off, len - off, max, &flen);
        if (rc == SL_EAGAIN) {
            break;
        }
        if (rc != SL_OK) {
            bad_frame(c, nat, rc, max);
            return len;
        }
        if (len - off - SL_FRAME_HEADER_BYTES < flen) {
            sl_conn_need(c, flen + SL_FRAME_HEADER_BYTES); /* closes on failure */
            break;
        }
        const uint8_t *payload = data + off + SL_FRAME_HEADER_BYTES;
        off += SL_FRAME_HEADER_BYTES + flen;
        /* Produce, the hot path: parsed in place, its batch left where it is */
        struct sl_pview view;
        char why[192];
        int prc = sl_pview_parse(payload, flen, &view, why, sizeof(why));
        if (prc == SL_EPROTO) {
            char msg[256];
            snprintf(msg, sizeof(msg), "request is not a valid protobuf Request: %s", why);
            sl_native_respond_error(c, 0, SL_EPROTO, msg);
            continue;
        }
        if (prc == SL_OK && sl_native_produce_view(nat, c, &view)) {
            continue;
        }
        sl_request *req = sl_request_unpack(payload, flen);
        if (req == NULL) {
            sl_native_respond_error(c, 0, SL_EPROTO, "request is not a valid protobuf Request");
            continue;
        }
        sl_conn_request_begin(c);
        sl_native_dispatch(nat, c, req);
    }
    return off;
}

/* Best effort: one error frame, then the loop closes the socket. */
static void native_refuse(int fd, int code, const char *why)
{
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.code = (Sluice__V1__ErrorCode)code;
    resp.message = (char *)why;
    uint8_t buf[256];
    size_t n = sl_response_size(&resp);
    if (n + SL_FRAME_HEADER_BYTES > sizeof(buf)) {
        return;
    }
    sl_frame_put_header(buf, (uint32_t)n);
    sl_response_pack(&resp, buf + SL_FRAME_HEADER_BYTES);
    ssize_t w = send(fd, buf, n + SL_FRAME_HEADER_BYTES, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
}

const struct sl_proto sl_native_proto = {
    .name = "native",
    .recv = native_recv,
    .refuse = native_refuse,
    .free = sl_native_session_free,
    .split = native_split,
};
