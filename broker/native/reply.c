/* reply.c - native responses (see reply.h). */
#include "broker/native/reply.h"

#include "common/assert.h"
#include "common/error.h"
#include "common/log.h"

void sl_native_respond(struct sl_conn *c, const sl_response *resp)
{
    if (sl_conn_is_closed(c)) {
        return;
    }
    size_t size = sl_response_size(resp);
    if (size + SL_FRAME_HEADER_BYTES > UINT32_MAX / 2) {
        sl_error("net", "conn %llu: response too large (%zu bytes)", (unsigned long long)c->id,
                 size);
        sl_conn_close_after_send(c);
        return;
    }
    uint32_t len = (uint32_t)size + SL_FRAME_HEADER_BYTES;
    uint8_t *p = sl_conn_reserve(c, len);
    if (p == NULL) {
        return; /* closed */
    }
    sl_frame_put_header(p, (uint32_t)size);
    size_t packed = sl_response_pack(resp, p + SL_FRAME_HEADER_BYTES);
    SL_ASSERT(packed == size);
    sl_conn_commit(c, len);
}

void sl_native_respond_error(struct sl_conn *c, uint64_t id, int code, const char *msg)
{
    sl_response resp = SLUICE__V1__RESPONSE__INIT;
    resp.id = id;
    resp.code = (Sluice__V1__ErrorCode)code;
    resp.message = (char *)(msg != NULL ? msg : sl_strerror(code));
    sl_native_respond(c, &resp);
}

void sl_native_fail(struct sl_conn *c, uint64_t id, int code, const char *msg)
{
    sl_native_respond_error(c, id, code, msg);
    sl_conn_request_done(c);
}
