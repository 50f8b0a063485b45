/* upgrade.c - a data directory written by the previous release opens, and a newer format
 * is refused.
 *
 * tests/fixtures/data-v1/ was written by sluiced before the data directory had a FORMAT
 * marker (tests/fixtures/README.md says how): stream `orders` (2 shards, zstd) with 300 JSON
 * records {"order":N,...}, consumer group `billing` committed after 120 of them; stream
 * `jobs` with queue group `workers`: 20 messages sent, 5 received and acknowledged.
 * Covers: all of that reads back exactly (records, checkpoints, queue state); the broker
 * writes the marker (format 1); a marker from a newer release stops the start with a
 * message naming both versions and the fix, and the data is left untouched.
 */
#include "../unit/test.h"
#include "harness.h"

#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ORDERS 300u

static struct it_broker broker;

static int read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return 0;
}

TEST(fixture_reads_back)
{
    sluice_client *c = NULL;
    CHECK(it_connect(&broker, &c) == SL_OK);
    /* every record once, content intact */
    sluice_consumer *cons = NULL;
    CHECK(sluice_consumer_new(c, "orders", NULL, NULL, &cons) == SL_OK);
    static uint8_t seen[ORDERS + 1];
    static struct sluice_record recs[512];
    uint32_t total = 0, bad = 0;
    uint64_t deadline = it_mono_ms() + 5000;
    while (total < ORDERS && it_mono_ms() < deadline) {
        size_t n = 0;
        CHECK(sluice_consumer_poll(cons, recs, 512, &n, 300) == SL_OK);
        for (size_t r = 0; r < n; r++) {
            char v[128], want[128];
            unsigned i = 0;
            uint32_t len = recs[r].value_len < 127 ? recs[r].value_len : 127;
            memcpy(v, recs[r].value, len);
            v[len] = '\0';
            if (sscanf(v, "{\"order\":%u", &i) != 1 || i == 0 || i > ORDERS || seen[i]) {
                bad++;
                continue;
            }
            snprintf(want, sizeof(want), "{\"order\":%u,\"item\":\"widget-%u\"}", i, i);
            bad += strcmp(v, want) != 0;
            seen[i] = 1;
            total++;
        }
    }
    sluice_consumer_free(cons);
    CHECK_EQ(bad, 0);
    CHECK_EQ(total, ORDERS);
    /* the group's checkpoints: it resumes after the 120 it had read */
    CHECK(sluice_consumer_new(c, "orders", "billing", NULL, &cons) == SL_OK);
    uint32_t rest = 0;
    deadline = it_mono_ms() + 3000;
    while (it_mono_ms() < deadline) {
        size_t n = 0;
        CHECK(sluice_consumer_poll(cons, recs, 512, &n, 300) == SL_OK);
        rest += (uint32_t)n;
        if (n == 0 && rest > 0) {
            break;
        }
    }
    sluice_consumer_free(cons);
    CHECK_EQ(rest, ORDERS - 120);
    /* the queue group's state: 15 of 20 still to do */
    struct sluice_queue_stats st;
    memset(&st, 0, sizeof(st));
    CHECK(sluice_queue_stats(c, "jobs", "workers", &st) == SL_OK);
    uint64_t visible = st.visible;
    sluice_queue_stats_fini(&st);
    CHECK_EQ(visible, 15);
    sluice_client_free(c);
    char marker[64], path[160];
    snprintf(path, sizeof(path), "%s/FORMAT", broker.data);
    CHECK(read_file(path, marker, sizeof(marker)) == 0);
    CHECK(strcmp(marker, "sluice data format 1\n") == 0);
}

TEST(newer_format_refused)
{
    CHECK(it_broker_stop(&broker) == 0);
    char path[160], cmd[512];
    snprintf(path, sizeof(path), "%s/FORMAT", broker.data);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("sluice data format 2\n", f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "'%s' --data '%s' --port 0 --http-port 0 2>&1", SLUICED_PATH,
             broker.data);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    static char out[8192];
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    fprintf(stderr, "%s", out);
    CHECK(status != 0);
    CHECK(strstr(out, "data format 2") != NULL);
    CHECK(strstr(out, "formats 1 to 1") != NULL);
    CHECK(strstr(out, "newer sluiced") != NULL);
    /* nothing was touched: the old format opens again once the marker is back */
    f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("sluice data format 1\n", f);
    fclose(f);
    CHECK(it_broker_restart(&broker) == 0);
    sluice_client *c = NULL;
    CHECK(it_connect(&broker, &c) == SL_OK);
    struct sluice_stream_info *list = NULL;
    size_t count = 0;
    CHECK(sluice_stream_list(c, &list, &count) == SL_OK);
    sluice_stream_list_free(list, count);
    sluice_client_free(c);
    CHECK_EQ(count, 2);
}

int main(void)
{
    int pre = it_preflight();
    if (pre != 0) {
        return pre;
    }
    if (it_broker_start_from(&broker, NULL, FIXTURES_DIR "/data-v1") != 0) {
        return 1;
    }
    RUN(fixture_reads_back);
    RUN(newer_format_refused);
    it_broker_cleanup(&broker);
    TEST_END();
}
