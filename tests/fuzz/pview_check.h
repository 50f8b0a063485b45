/* pview_check.h - the differential check of the in-place Produce parser
 * (broker/native/pview.c) against protobuf-c's unpack, shared by fuzz_pview
 * and fuzz_frame. On one payload:
 *   - the parser claims a Produce (SL_OK): protobuf-c accepts the frame as a
 *     Produce and every field agrees (the stream as a C string reads it);
 *     the view's stream and batch lie inside the payload (zero copy);
 *   - the parser refuses it (SL_EPROTO): protobuf-c refuses it too, except
 *     for the one documented difference (in_order, trace or caller_routed of
 *     another wire type,
 *     which protobuf-c takes); the fault and message are set;
 *   - SL_ENOTFOUND: protobuf-c's path handles it; nothing to compare, but
 *     the parser must not have claimed a frame whose last body is Produce
 *     without other top-level fields (it would have said SL_OK).
 * Aborts (a libFuzzer crash) on any disagreement.
 */
#ifndef SL_PVIEW_CHECK_H
#define SL_PVIEW_CHECK_H

#include "broker/native/pview.h"
#include "common/assert.h"
#include "common/error.h"
#include "proto/frame.h"

#include <string.h>

static inline bool pview_check_inside(const uint8_t *p, size_t len, const uint8_t *q, size_t n)
{
    return n == 0 || (q >= p && (size_t)(q - p) <= len && n <= len - (size_t)(q - p));
}

static inline void pview_check(const uint8_t *payload, size_t len)
{
    struct sl_pview v;
    char why[256];
    int rc = sl_pview_parse(payload, len, &v, why, sizeof(why));
    sl_request *r = sl_request_unpack(payload, len);
    if (rc == SL_OK) {
        SL_ASSERT(r != NULL && r->body_case == SLUICE__V1__REQUEST__BODY_PRODUCE);
        const Sluice__V1__Produce *m = r->produce;
        SL_ASSERT(r->id == v.id);
        SL_ASSERT(m->shard == v.shard);
        SL_ASSERT((int32_t)m->ack == v.ack);
        SL_ASSERT(m->in_order == v.in_order);
        SL_ASSERT(m->trace == v.trace);
        SL_ASSERT(m->caller_routed == v.caller_routed);
        SL_ASSERT(m->stream != NULL && strlen(m->stream) == v.stream_len);
        SL_ASSERT(v.stream_len == 0 || memcmp(m->stream, v.stream, v.stream_len) == 0);
        SL_ASSERT(m->batch.len == v.batch_len);
        SL_ASSERT(v.batch_len == 0 || memcmp(m->batch.data, v.batch, v.batch_len) == 0);
        SL_ASSERT(pview_check_inside(payload, len, v.stream, v.stream_len));
        SL_ASSERT(pview_check_inside(payload, len, v.batch, v.batch_len));
        SL_ASSERT(v.fault == SL_PVIEW_OK);
    } else if (rc == SL_EPROTO) {
        SL_ASSERT(v.fault != SL_PVIEW_OK && why[0] != '\0');
        SL_ASSERT(r == NULL || v.fault == SL_PVIEW_BAD_WIRE_TYPE);
        if (r != NULL) {
            /* the documented difference only */
            SL_ASSERT(strstr(why, "in_order") != NULL || strstr(why, "trace") != NULL ||
                      strstr(why, "caller_routed") != NULL);
        }
    } else {
        SL_ASSERT(rc == SL_ENOTFOUND);
    }
    sl_request_free(r);
}

#endif
