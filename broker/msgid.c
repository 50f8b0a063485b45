/* msgid.c - the SQS-style message id (see msgid.h). The layout is what the
 * SQS API has always answered: changing it changes every MessageId clients
 * may have stored. */
#include "broker/msgid.h"

#include "common/assert.h"
#include "common/checksum.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void sl_msgid_format(const char *stream, uint32_t shard, uint64_t seq, char out[SL_MSGID_LEN + 1])
{
    uint32_t q = sl_checksum32(stream, strlen(stream));
    int n = snprintf(out, SL_MSGID_LEN + 1, "%08x-%04x-%04x-%04x-%012" PRIx64, q, shard & 0xffffu,
                     (unsigned)(seq >> 60), (unsigned)(seq >> 48) & 0xfffu,
                     seq & UINT64_C(0xffffffffffff));
    SL_ASSERT(n == (int)SL_MSGID_LEN);
}
