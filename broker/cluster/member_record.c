/* member_record.c - the broker record in /brokers/ids/<id> (member.h): its
 * encoder and its decoder. The decoder reads bytes another broker (or anyone
 * with access to ZooKeeper) wrote: it checks every length against the bytes
 * it has and every field against its bound, and never trusts a count
 * (tests/fuzz/fuzz_member.c). */
#include "broker/cluster/member.h"

#include "common/bytes.h"
#include "common/error.h"

#include <string.h>

#define MAGIC      "SLBK"
#define HEAD_BYTES 20u /* magic 4, format 2, flags 2, node id 4, start 8 */

_Static_assert(HEAD_BYTES + 3 * 2 + 2 * (SL_MEMBER_ADDR_MAX - 1) + SL_MEMBER_VERSION_MAX - 1 <=
                   SL_MEMBER_RECORD_MAX,
               "the largest record fits SL_MEMBER_RECORD_MAX");
_Static_assert(SL_MEMBER_RECORD_MAX <= SL_META_DATA_MAX, "a record is one node's data");

static bool text_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

static uint8_t *put_str(uint8_t *p, const char *s, size_t n)
{
    p[0] = (uint8_t)n;
    p[1] = (uint8_t)(n >> 8);
    memcpy(p + 2, s, n);
    return p + 2 + n;
}

size_t sl_member_record_encode(const struct sl_member_info *in, uint8_t *out, size_t cap)
{
    size_t na = strnlen(in->native_addr, SL_MEMBER_ADDR_MAX);
    size_t ha = strnlen(in->http_addr, SL_MEMBER_ADDR_MAX);
    size_t nv = strnlen(in->version, SL_MEMBER_VERSION_MAX);
    if (na == 0 || na >= SL_MEMBER_ADDR_MAX || ha >= SL_MEMBER_ADDR_MAX ||
        nv >= SL_MEMBER_VERSION_MAX || !text_ok(in->native_addr, na) ||
        !text_ok(in->http_addr, ha) || !text_ok(in->version, nv) || in->node_id == 0 ||
        in->node_id > SL_MEMBER_NODE_ID_MAX) {
        return 0;
    }
    size_t len = HEAD_BYTES + 6 + na + ha + nv;
    if (len > cap) {
        return 0;
    }
    memcpy(out, MAGIC, 4);
    out[4] = (uint8_t)SL_MEMBER_RECORD_FORMAT;
    out[5] = 0;
    out[6] = 0;
    out[7] = 0;
    sl_put_u32(out + 8, in->node_id);
    sl_put_u64(out + 12, in->start_ms);
    uint8_t *p = put_str(out + HEAD_BYTES, in->native_addr, na);
    p = put_str(p, in->http_addr, ha);
    p = put_str(p, in->version, nv);
    return (size_t)(p - out);
}

/* A length-prefixed string into a field of `cap` bytes (NUL-terminated). */
static bool take_str(struct sl_reader *r, char *field, size_t cap)
{
    const uint8_t *lp = sl_reader_take(r, 2);
    if (lp == NULL) {
        return false;
    }
    size_t n = (size_t)lp[0] | (size_t)lp[1] << 8;
    if (n >= cap) {
        return false;
    }
    const uint8_t *s = sl_reader_take(r, n);
    if (s == NULL || !text_ok((const char *)s, n)) {
        return false;
    }
    memcpy(field, s, n);
    field[n] = '\0';
    return true;
}

int sl_member_record_decode(const uint8_t *in, size_t len, struct sl_member_info *out)
{
    memset(out, 0, sizeof(*out));
    struct sl_reader r = {.p = in, .left = len};
    const uint8_t *h = in != NULL ? sl_reader_take(&r, HEAD_BYTES) : NULL;
    if (h == NULL || memcmp(h, MAGIC, 4) != 0) {
        return SL_EPROTO;
    }
    uint32_t format = (uint32_t)h[4] | (uint32_t)h[5] << 8;
    if (format == 0) {
        return SL_EPROTO;
    }
    out->node_id = sl_get_u32(h + 8);
    out->start_ms = sl_get_u64(h + 12);
    if (out->node_id == 0 || out->node_id > SL_MEMBER_NODE_ID_MAX ||
        !take_str(&r, out->native_addr, sizeof(out->native_addr)) ||
        !take_str(&r, out->http_addr, sizeof(out->http_addr)) ||
        !take_str(&r, out->version, sizeof(out->version)) || out->native_addr[0] == '\0' ||
        (format == SL_MEMBER_RECORD_FORMAT && r.left != 0)) {
        memset(out, 0, sizeof(*out));
        return SL_EPROTO;
    }
    return SL_OK;
}
