/* test_push_target.c - the push targets file (broker/push/target.c): a
 * version 1 file (written byte by byte as the previous release did, without
 * transforms) still loads; a version 2 file keeps a target's transform; a
 * transform on a target that is not eventbridge, or one that does not
 * compile, is refused with a message naming it; a flipped byte is
 * SL_ECORRUPT.
 */
#include "broker/push/target.h"

#include "common/bytes.h"
#include "common/checksum.h"
#include "common/error.h"

#include "tests/unit/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void write_file(const uint8_t *buf, size_t len)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/push", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/push/targets", dir);
    FILE *f = fopen(path, "wb");
    fwrite(buf, 1, len, f);
    fclose(f);
}

static uint8_t *str(uint8_t *p, const char *s, int width)
{
    size_t n = strlen(s);
    *p++ = (uint8_t)n;
    if (width == 2) {
        *p++ = (uint8_t)(n >> 8);
    }
    memcpy(p, s, n);
    return p + n;
}

TEST(version_1_file_loads)
{
    uint8_t buf[512];
    sl_put_u32(buf, 0x54504C53u);
    sl_put_u32(buf + 4, 1);
    sl_put_u32(buf + 8, 1);
    uint8_t *p = str(buf + 12, "s", 1);
    p = str(p, "g", 1);
    p = str(p, "http://127.0.0.1:9/x", 2);
    *p++ = 4; /* eventbridge */
    *p++ = 0;
    const uint32_t v[6] = {1, 0, 1, 30000, 1000, 300000};
    for (int i = 0; i < 6; i++, p += 4) {
        sl_put_u32(p, v[i]);
    }
    size_t len = (size_t)(p - buf);
    sl_put_u64(p, sl_checksum64(buf, len));
    write_file(buf, len + 8);
    struct sl_push_target *t = NULL;
    uint32_t n = 0;
    char why[256] = "";
    CHECK_EQ(sl_push_targets_load(dir, &t, &n, why, sizeof(why)), SL_OK);
    CHECK_EQ(n, 1);
    CHECK(strcmp(t[0].url, "http://127.0.0.1:9/x") == 0);
    CHECK(t[0].transform[0] == '\0');
    CHECK_EQ(t[0].timeout_ms, 30000);
    free(t);
}

/* Two eventbridge targets (s0, s1) to `url`; pair_round_trip checks, saves and loads
 * them back into *got (two, or the test failed). */
static struct sl_push_target pair[2];

static void pair_init(const char *url)
{
    memset(pair, 0, sizeof(pair));
    for (int i = 0; i < 2; i++) {
        snprintf(pair[i].stream, sizeof(pair[i].stream), "s%d", i);
        snprintf(pair[i].group, sizeof(pair[i].group), "g");
        snprintf(pair[i].url, sizeof(pair[i].url), "%s", url);
        pair[i].format = SL_PUSH_FORMAT_EVENTBRIDGE;
    }
}

static void pair_round_trip(struct sl_push_target **got)
{
    char why[256] = "";
    uint32_t n = 0;
    *got = NULL;
    CHECK_EQ(sl_push_target_check(&pair[0], why, sizeof(why)), SL_OK);
    CHECK_EQ(sl_push_target_check(&pair[1], why, sizeof(why)), SL_OK);
    CHECK_EQ(sl_push_targets_save(dir, pair, 2, why, sizeof(why)), SL_OK);
    CHECK_EQ(sl_push_targets_load(dir, got, &n, why, sizeof(why)), SL_OK);
    CHECK_EQ(n, 2);
}

TEST(version_2_keeps_the_transform)
{
    pair_init("stream:dest");
    snprintf(pair[1].transform, sizeof(pair[1].transform), "{\"InputPath\":\"$.detail\"}");
    struct sl_push_target *got = NULL;
    pair_round_trip(&got);
    if (test_cur_failed_) {
        free(got);
        return;
    }
    CHECK(strcmp(got[1].transform, "{\"InputPath\":\"$.detail\"}") == 0);
    CHECK(got[0].transform[0] == '\0');
    free(got);
}

TEST(version_3_keeps_the_replay_name)
{
    pair_init("http://127.0.0.1:9/x");
    snprintf(pair[0].replay_name, sizeof(pair[0].replay_name), "again");
    struct sl_push_target *got = NULL;
    pair_round_trip(&got);
    if (test_cur_failed_) {
        free(got);
        return;
    }
    CHECK(strcmp(got[0].replay_name, "again") == 0);
    CHECK(got[1].replay_name[0] == '\0');
    free(got);
    /* only an EventBridge target delivers replays */
    char why[256] = "";
    pair[1].format = SL_PUSH_FORMAT_SQS;
    snprintf(pair[1].replay_name, sizeof(pair[1].replay_name), "again");
    CHECK_EQ(sl_push_target_check(&pair[1], why, sizeof(why)), SL_EINVAL);
    CHECK(strstr(why, "replay_name") != NULL);
}

TEST(bad_transforms_are_refused)
{
    static struct sl_push_target t;
    memset(&t, 0, sizeof(t));
    snprintf(t.stream, sizeof(t.stream), "s");
    snprintf(t.group, sizeof(t.group), "g");
    snprintf(t.url, sizeof(t.url), "http://127.0.0.1:9/x");
    t.format = 4;
    snprintf(t.transform, sizeof(t.transform), "{\"InputPath\":\"nope\"}");
    char why[256] = "";
    CHECK_EQ(sl_push_target_check(&t, why, sizeof(why)), SL_EINVAL);
    CHECK(strstr(why, "transform: InputPath") != NULL);
    t.format = 0;
    snprintf(t.transform, sizeof(t.transform), "{\"InputPath\":\"$\"}");
    CHECK_EQ(sl_push_target_check(&t, why, sizeof(why)), SL_EINVAL);
    CHECK(strstr(why, "eventbridge") != NULL);
}

TEST(flipped_byte_is_corrupt)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/push/targets", dir);
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    fseek(f, 20, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 20, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
    struct sl_push_target *t = NULL;
    uint32_t n = 0;
    char why[256] = "";
    CHECK_EQ(sl_push_targets_load(dir, &t, &n, why, sizeof(why)), SL_ECORRUPT);
    CHECK(strstr(why, "damaged") != NULL);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/sl-push-target-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        return 1;
    }
    RUN(version_1_file_loads);
    RUN(version_2_keeps_the_transform);
    RUN(version_3_keeps_the_replay_name);
    RUN(bad_transforms_are_refused);
    RUN(flipped_byte_is_corrupt);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    TEST_END();
}
