/* frame.c - frame headers and the protobuf-c pack/unpack wrappers.
 *
 * The wire's ErrorCode (proto/sluice.proto) is enum sl_err by number: the broker casts one
 * to the other when it answers (broker/native/) and the client reads a response's code as
 * an sl_err (client/). The assertions below are what those casts rely on.
 */
#include "proto/frame.h"

#include "common/error.h"

#define SL_WIRE_SAME(name)                                                                     \
    _Static_assert((int)SLUICE__V1__ERROR_CODE__##name == (int)SL_##name,                    \
                   "wire ErrorCode " #name " == SL_" #name)

SL_WIRE_SAME(OK);
SL_WIRE_SAME(EAGAIN);
SL_WIRE_SAME(ECORRUPT);
SL_WIRE_SAME(ENOSPC);
SL_WIRE_SAME(EPROTO);
SL_WIRE_SAME(ETOOBIG);
SL_WIRE_SAME(ELIMIT);
SL_WIRE_SAME(ENOTFOUND);
SL_WIRE_SAME(ETRIMMED);
SL_WIRE_SAME(EFATAL);
SL_WIRE_SAME(EIO);
SL_WIRE_SAME(EINVAL);
SL_WIRE_SAME(ENOMEM);
SL_WIRE_SAME(EEXIST);
SL_WIRE_SAME(ECLOSED);
SL_WIRE_SAME(EUNSUPPORTED);
SL_WIRE_SAME(ESYS);
SL_WIRE_SAME(EAUTH);
SL_WIRE_SAME(EDENIED);
SL_WIRE_SAME(EFENCED);
SL_WIRE_SAME(ESHARD_CLOSED);
SL_WIRE_SAME(ECONFLICT);
SL_WIRE_SAME(ENOT_LEADER);
SL_WIRE_SAME(ENOT_ENOUGH_REPLICAS);
/* enum sl_err ends at ENOT_ENOUGH_REPLICAS too. (The generated enum has no count, so a code appended to
 * the .proto alone is not caught here: append it to enum sl_err and sluice.h with it.) */
_Static_assert((int)SLUICE__V1__ERROR_CODE__ENOT_ENOUGH_REPLICAS + 1 == (int)SL_ERR_COUNT_,
               "the wire's ErrorCode and enum sl_err end at the same code");

int sl_frame_peek(const uint8_t *buf, size_t avail, uint32_t max_frame, uint32_t *frame_len)
{
    if (avail < SL_FRAME_HEADER_BYTES) {
        return SL_EAGAIN;
    }
    uint32_t len = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 |
                   (uint32_t)buf[3];
    if (len == 0) {
        return SL_EPROTO;
    }
    if (len > max_frame) {
        return SL_ETOOBIG;
    }
    *frame_len = len;
    return SL_OK;
}

void sl_frame_put_header(uint8_t *dst, uint32_t len)
{
    dst[0] = (uint8_t)(len >> 24);
    dst[1] = (uint8_t)(len >> 16);
    dst[2] = (uint8_t)(len >> 8);
    dst[3] = (uint8_t)len;
}

sl_request *sl_request_unpack(const uint8_t *payload, size_t len)
{
    return sluice__v1__request__unpack(NULL, len, payload);
}

void sl_request_free(sl_request *req)
{
    if (req != NULL) {
        sluice__v1__request__free_unpacked(req, NULL);
    }
}

sl_response *sl_response_unpack(const uint8_t *payload, size_t len)
{
    return sluice__v1__response__unpack(NULL, len, payload);
}

void sl_response_free(sl_response *resp)
{
    if (resp != NULL) {
        sluice__v1__response__free_unpacked(resp, NULL);
    }
}

size_t sl_request_size(const sl_request *req)
{
    return sluice__v1__request__get_packed_size(req);
}

size_t sl_request_pack(const sl_request *req, uint8_t *out)
{
    return sluice__v1__request__pack(req, out);
}

size_t sl_response_size(const sl_response *resp)
{
    return sluice__v1__response__get_packed_size(resp);
}

size_t sl_response_pack(const sl_response *resp, uint8_t *out)
{
    return sluice__v1__response__pack(resp, out);
}
