/* frame.h - the native protocol's framing and message codec (docs/PROTOCOL.md).
 *
 * A frame is `u32 length (big-endian) | length bytes of protobuf`. This module
 * (with the generated proto/sluice.pb-c.h) is the only user of protobuf-c's
 * pack/unpack: it enforces the frame size limit before anything is parsed,
 * and never trusts a declared length. Thread-safe (no state).
 */
#ifndef SL_FRAME_H
#define SL_FRAME_H

#include "proto/sluice.pb-c.h"

#include <stddef.h>
#include <stdint.h>

#define SL_PROTOCOL_VERSION 1u
#define SL_FRAME_HEADER_BYTES 4u
#define SL_FRAME_BYTES_DEFAULT (16u << 20) /* max frame payload (setting) */
#define SL_FRAME_BYTES_MAX (256u << 20)    /* hard ceiling of the setting */

typedef Sluice__V1__Request sl_request;
typedef Sluice__V1__Response sl_response;

/* Looks at the bytes received so far. Returns SL_OK with *frame_len (payload
 * bytes) when a header is present and the length is acceptable; SL_EAGAIN
 * when fewer than 4 bytes are there; SL_ETOOBIG when the declared length
 * exceeds `max_frame` (the connection must then be closed: the stream cannot
 * be resynchronised); SL_EPROTO for a zero length. */
int sl_frame_peek(const uint8_t *buf, size_t avail, uint32_t max_frame, uint32_t *frame_len);

/* Writes the 4-byte big-endian header for a payload of `len` bytes. */
void sl_frame_put_header(uint8_t *dst, uint32_t len);

/* Unpacks a Request payload. Returns NULL on malformed input (the caller
 * answers EPROTO). Free with sl_request_free. */
sl_request *sl_request_unpack(const uint8_t *payload, size_t len);
void sl_request_free(sl_request *req);
sl_response *sl_response_unpack(const uint8_t *payload, size_t len);
void sl_response_free(sl_response *resp);

/* Packed sizes (payload only) and packing into a caller buffer of at least
 * that size. Return the payload bytes written. */
size_t sl_request_size(const sl_request *req);
size_t sl_request_pack(const sl_request *req, uint8_t *out);
size_t sl_response_size(const sl_response *resp);
size_t sl_response_pack(const sl_response *resp, uint8_t *out);

#endif
