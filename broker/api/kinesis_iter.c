/* kinesis_iter.c - shard iterators: GetShardIterator, and the check of the
 * tokens GetRecords receives.
 *
 * A token (layout in kinesis_codec.c) names the stream (with its creation
 * time, so a deleted and re-created stream refuses old tokens), the shard,
 * where to read (a sequence; or TRIM_HORIZON / AT_TIMESTAMP, resolved by the
 * read itself so that retention and time lookups happen on the shard's
 * owner), when it was issued and by which process. It is authenticated with
 * HMAC-SHA256 under a random per-process key (kinesis_crypto.c): an altered
 * or forged token is InvalidArgumentException; one older than 5 minutes, or
 * issued by an earlier broker process (other boot id: its key is gone), is
 * ExpiredIteratorException, as AWS answers for stale iterators.
 * LATEST is resolved when the iterator is issued: the shard's visible tail.
 *
 * Threading: the main loop; synchronous.
 */
#include "broker/api/kinesis_crypto.h"
#include "broker/api/kinesis_int.h"

#include "broker/engine/catalog.h"
#include "broker/engine/engine.h"
#include "broker/engine/streams.h"
#include "common/assert.h"
#include "common/base64.h"
#include "common/clock.h"
#include "common/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define WHY_MAX 256u

void sl_kin_iter_token(const struct sl_stream *st, uint32_t shard, uint32_t kind, uint64_t value,
                       char *out)
{
    SL_ASSERT(shard < st->shard_count && kind <= SL_KIN_ITER_TIME);
    struct sl_kin_token t = {.kind = kind,
                             .shard = shard,
                             .value = value,
                             .issued_ms = sl_clock_wall_ms(),
                             .created_ms = st->created_ms,
                             .boot = sl_kin_boot_id()};
    snprintf(t.stream, sizeof(t.stream), "%s", st->name);
    uint8_t raw[SL_KIN_TOKEN_RAW_MAX];
    size_t n = sl_kin_token_pack(&t, raw);
    sl_kin_mac(raw, n, raw + n);
    n += SL_KIN_MAC_BYTES;
    SL_ASSERT(sl_b64_len(n) <= SL_KIN_TOKEN_BYTES_MAX);
    sl_b64_encode(raw, n, out);
    out[sl_b64_len(n)] = '\0';
}

bool sl_kin_iter_check(struct sl_engine *e, const char *b64, struct sl_kin_token *t,
                       struct sl_stream **st, enum sl_kin_err *err, char *why, size_t why_len)
{
    uint8_t raw[SL_KIN_TOKEN_RAW_MAX], mac[SL_KIN_MAC_BYTES];
    const uint8_t *got = NULL;
    size_t covered = 0;
    *err = SL_KIN_INVALID_ARGUMENT;
    if (sl_kin_token_unpack(b64, t, raw, &covered, &got) != SL_OK) {
        snprintf(why, why_len, "Invalid ShardIterator: not an iterator of this broker");
        return false;
    }
    if (t->boot != sl_kin_boot_id()) {
        *err = SL_KIN_EXPIRED_ITERATOR;
        snprintf(why, why_len, "Iterator expired: issued before the broker restarted");
        return false;
    }
    sl_kin_mac(raw, covered, mac);
    if (!sl_kin_mac_equal(mac, got)) {
        snprintf(why, why_len, "Invalid ShardIterator: its signature does not match");
        return false;
    }
    uint64_t now = sl_clock_wall_ms();
    if (now > t->issued_ms && now - t->issued_ms > SL_KIN_ITERATOR_TTL_MS) {
        *err = SL_KIN_EXPIRED_ITERATOR;
        snprintf(why, why_len,
                 "Iterator expired. The iterator was created at time %" PRIu64
                 " while right now it is %" PRIu64 " which is further in the future than the "
                 "tolerated delay of %u milliseconds.",
                 t->issued_ms, now, SL_KIN_ITERATOR_TTL_MS);
        return false;
    }
    *st = sl_catalog_find(e->catalog, t->stream);
    if (*st == NULL || (*st)->created_ms != t->created_ms || t->shard >= (*st)->shard_count) {
        *err = SL_KIN_RESOURCE_NOT_FOUND;
        snprintf(why, why_len, "Stream %s under account " SL_KIN_ACCOUNT " not found.", t->stream);
        return false;
    }
    return true;
}

void sl_kin_get_shard_iterator(struct sl_api_call *call, json_t *body)
{
    struct sl_kin_iter_req r;
    char why[WHY_MAX];
    int rc = sl_kin_decode_iter_req(body, &r, why, sizeof(why));
    if (rc != SL_OK) {
        sl_kin_fail(call, rc == SL_EPROTO ? SL_KIN_SERIALIZATION : SL_KIN_INVALID_ARGUMENT, "%s",
                    why);
        return;
    }
    struct sl_stream *st = sl_kin_stream_named(call, r.stream, r.stream_arn);
    if (st == NULL) {
        return;
    }
    if (r.shard >= st->shard_count) {
        char id[SL_KIN_SHARD_ID_LEN + 1];
        sl_kin_shard_id(r.shard, id);
        sl_kin_fail(call, SL_KIN_RESOURCE_NOT_FOUND,
                    "Shard %s in stream %s under account " SL_KIN_ACCOUNT " does not exist", id,
                    st->name);
        return;
    }
    struct sl_shard_info si;
    sl_streams_shard_info(st, r.shard, &si);
    if (r.kind == SL_KIN_ITER_LATEST) {
        r.kind = SL_KIN_ITER_SEQ;
        r.value = si.next_seq;
    } else if (r.kind == SL_KIN_ITER_SEQ && r.value > si.next_seq) {
        sl_kin_fail(call, SL_KIN_INVALID_ARGUMENT,
                    "StartingSequenceNumber %" PRIu64 " is beyond the shard's last record "
                    "(the next is %" PRIu64 ")",
                    r.value, si.next_seq);
        return;
    }
    char token[SL_KIN_TOKEN_BYTES_MAX + 1];
    sl_kin_iter_token(st, r.shard, r.kind, r.value, token);
    sl_kin_reply_json(call, json_pack("{s:s}", "ShardIterator", token));
}
