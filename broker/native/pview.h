/* pview.h - an in-place parse of the native Produce request (the hot path):
 * the frame's protobuf wire format walked by hand into a view whose stream
 * and batch POINT INTO the frame, so a batch is not copied (nor allocated)
 * before the shard stages it. Every other request is unpacked by protobuf-c
 * (proto/frame.h); the wire format is the same (proto/sluice.proto).
 *
 * What it claims: a Request whose fields are only `id` (1) and `produce`
 * (15), each any number of times, in any order. Anything else (another
 * body, an unknown top-level field) is SL_ENOTFOUND: unpack it with
 * protobuf-c. It agrees with protobuf-c's unpack field for field (last
 * occurrence wins, a oneof member replaces the earlier one, unknown fields
 * inside Produce skipped), checked by tests/fuzz/fuzz_pview.c, with one
 * deliberate difference: protobuf-c takes a bool of any wire type, this
 * refuses `in_order`, `trace` and `caller_routed` unless a varint (SL_PVIEW_BAD_WIRE_TYPE).
 *
 * Lifetime: the view borrows the frame; it is valid while the frame's bytes
 * are (broker/native/h_data.c pins the receive buffer for that).
 * Thread-safe (no state).
 */
#ifndef SL_PVIEW_H
#define SL_PVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What was wrong with a frame refused SL_EPROTO. */
enum sl_pview_fault {
    SL_PVIEW_OK = 0,
    SL_PVIEW_BAD_TAG,         /* field number 0, or a tag varint longer than 5 bytes */
    SL_PVIEW_BAD_VARINT,      /* a varint running past the frame or longer than 10 bytes */
    SL_PVIEW_BAD_LENGTH,      /* a length prefix past the frame, > 2^31-1, or over 5 bytes */
    SL_PVIEW_BAD_FIXED,       /* a fixed32/64 value cut by the end of the frame */
    SL_PVIEW_BAD_WIRE_TYPE,   /* a known field sent with another wire type */
    SL_PVIEW_GROUP,           /* wire type 3/4 (groups) or 6/7: not protobuf 3 */
};

struct sl_pview {
    uint64_t id;
    const uint8_t *stream; /* into the frame; not NUL-terminated */
    size_t stream_len;     /* up to the first NUL, as protobuf-c's C string reads */
    uint32_t shard;
    int32_t ack;           /* AckMode as sent (an open enum: any value) */
    const uint8_t *batch;  /* into the frame; NULL when empty */
    size_t batch_len;
    bool in_order;
    bool trace;            /* Produce.trace: answer with the stages' times */
    bool caller_routed;    /* Produce.caller_routed: keys not checked against the ranges */
    enum sl_pview_fault fault; /* set with SL_EPROTO */
};

/* Parses one frame's payload. Returns SL_OK (a Produce, *out filled),
 * SL_ENOTFOUND (not one this parser claims: use protobuf-c), or SL_EPROTO
 * with out->fault and a message in `why` naming the field and the byte
 * offset (the caller answers EPROTO). `frame` is borrowed for the call;
 * the view points into it. */
int sl_pview_parse(const uint8_t *frame, size_t len, struct sl_pview *out, char *why,
                   size_t why_len);

#endif
