/* fuzz_route.c - libsluice's routing table for cluster mode (client/route.c) fed a Metadata
 * answer off the wire, which a broker (or anything claiming to be one) wrote, so is not
 * trusted; and the bootstrap list parser (a user's string).
 *
 * Input: a Response payload (protobuf). When it carries a MetadataResponse it is copied
 * into the public structs (sl_route_metadata_copy) and applied to a table that already
 * routes one stream. The whole input, as a string, is also parsed as a bootstrap list.
 * Checks: a refused copy or apply (SL_EPROTO with a reason) leaves the table routing as
 * before; an accepted one routes every listed shard with a leader >= 0 to that leader and
 * epoch, knows every broker kept, and the table's invariants hold (route.c asserts them);
 * a parsed list has 1..SL_ROUTE_BOOTSTRAP_MAX addresses, each with a ':' and shorter than
 * SL_ROUTE_ADDR_MAX.
 */
#include "client/route.h"
#include "common/assert.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A table routing "prior" shard 0 to node 5: what a refused answer must leave alone. */
static void prior_table(struct sl_route *r)
{
    SL_ASSERT(sl_route_init(r) == SL_OK);
    struct sluice_broker_info b = {.node_id = 5, .address = "p:1"};
    struct sluice_shard_route sh = {.shard = 0, .leader = 5};
    struct sluice_stream_route st = {.name = "prior", .n_shards = 1, .shards = &sh};
    struct sluice_metadata m = {.n_brokers = 1, .brokers = &b, .n_streams = 1, .streams = &st};
    char why[SL_ROUTE_WHY_MAX];
    SL_ASSERT(sl_route_apply(r, &m, why, sizeof(why)) == SL_OK);
}

static void check_applied(const struct sl_route *r, const struct sluice_metadata *m)
{
    for (size_t i = 0; i < m->n_streams; i++) {
        const struct sluice_stream_route *sr = &m->streams[i];
        for (size_t j = 0; j < sr->n_shards; j++) {
            int32_t node = 0, epoch = 0;
            int rc = sl_route_leader(r, sr->name, sr->shards[j].shard, &node, &epoch);
            if (sr->shards[j].leader >= 0) {
                SL_ASSERT(rc == SL_OK && node == sr->shards[j].leader);
                SL_ASSERT(epoch == sr->shards[j].leader_epoch);
            } else {
                SL_ASSERT(rc == SL_ENOTFOUND);
            }
        }
    }
    for (size_t i = 0; i < m->n_brokers && i < SL_ROUTE_BROKERS_MAX; i++) {
        SL_ASSERT(sl_route_broker(r, (int32_t)m->brokers[i].node_id) != NULL);
    }
}

static void metadata(const uint8_t *data, size_t size)
{
    sl_response *resp = sl_response_unpack(data, size);
    if (resp == NULL) {
        return;
    }
    if (resp->body_case == SLUICE__V1__RESPONSE__BODY_METADATA) {
        struct sl_route r;
        prior_table(&r);
        struct sluice_metadata *m = NULL;
        char why[SL_ROUTE_WHY_MAX];
        why[0] = '\0';
        int rc = sl_route_metadata_copy(resp->metadata, &m, why, sizeof(why));
        SL_ASSERT((rc == SL_OK) == (m != NULL));
        SL_ASSERT(rc == SL_OK || why[0] != '\0');
        if (rc == SL_OK) {
            why[0] = '\0';
            rc = sl_route_apply(&r, m, why, sizeof(why));
            SL_ASSERT(rc == SL_OK || rc == SL_EPROTO || rc == SL_ENOMEM);
            if (rc == SL_OK) {
                check_applied(&r, m);
            } else {
                SL_ASSERT(why[0] != '\0');
                int32_t node = 0;
                SL_ASSERT(sl_route_leader(&r, "prior", 0, &node, NULL) == SL_OK && node == 5);
            }
        }
        sluice_metadata_free(m);
        sl_route_fini(&r);
    }
    sl_response_free(resp);
}

static void bootstrap(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    SL_ASSERT(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';
    static char out[SL_ROUTE_BOOTSTRAP_MAX][SL_ROUTE_ADDR_MAX];
    char why[SL_ROUTE_WHY_MAX];
    uint32_t n = 0;
    if (sl_route_parse_list(s, out, &n, why, sizeof(why)) == SL_OK) {
        SL_ASSERT(n >= 1 && n <= SL_ROUTE_BOOTSTRAP_MAX);
        for (uint32_t i = 0; i < n; i++) {
            SL_ASSERT(strlen(out[i]) < SL_ROUTE_ADDR_MAX && strchr(out[i], ':') != NULL);
        }
    } else {
        SL_ASSERT(n <= SL_ROUTE_BOOTSTRAP_MAX && why[0] != '\0');
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    metadata(data, size);
    bootstrap(data, size);
    return 0;
}
