/* fuzz_member.c - the broker record decoder (broker/cluster/member_record.c)
 * over untrusted bytes: a peer's record arrives through ZooKeeper, and anyone
 * with access to ZooKeeper can write /brokers/ids/<id>.
 *
 * Input: a record as stored in the node.
 * Checks beyond ASan/UBSan: a record either decodes to fields within their
 * bounds (node id 1..SL_MEMBER_NODE_ID_MAX, NUL-terminated printable strings,
 * a non-empty native address) or is refused with SL_EPROTO and a zeroed
 * result; a decoded record encodes again, decodes to the same fields, and
 * when it was format 1 with no flags, encodes to exactly the input bytes.
 */
#include "broker/cluster/member.h"
#include "common/assert.h"
#include "common/error.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    SL_ASSERT(n < cap);
    for (size_t i = 0; i < n; i++) {
        SL_ASSERT((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] <= 0x7e);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sl_member_info a, b, zero;
    memset(&zero, 0, sizeof(zero));
    int rc = sl_member_record_decode(data, size, &a);
    if (rc != SL_OK) {
        SL_ASSERT(rc == SL_EPROTO);
        SL_ASSERT(memcmp(&a, &zero, sizeof(a)) == 0);
        return 0;
    }
    SL_ASSERT(a.node_id >= 1 && a.node_id <= SL_MEMBER_NODE_ID_MAX && a.session_id == 0);
    check_text(a.native_addr, sizeof(a.native_addr));
    check_text(a.http_addr, sizeof(a.http_addr));
    check_text(a.version, sizeof(a.version));
    SL_ASSERT(a.native_addr[0] != '\0');
    uint8_t out[SL_MEMBER_RECORD_MAX];
    size_t len = sl_member_record_encode(&a, out, sizeof(out));
    SL_ASSERT(len > 0 && len <= size);
    if (size >= 8 && data[4] == SL_MEMBER_RECORD_FORMAT && data[5] == 0 && data[6] == 0 &&
        data[7] == 0) {
        SL_ASSERT(len == size && memcmp(out, data, size) == 0);
    }
    SL_ASSERT(sl_member_record_decode(out, len, &b) == SL_OK);
    SL_ASSERT(memcmp(&a, &b, sizeof(a)) == 0);
    return 0;
}
