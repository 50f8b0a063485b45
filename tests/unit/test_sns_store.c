/* test_sns_store.c - unit tests for broker/api/sns_store.c, the SNS API's
 * subscriptions file.
 *
 * Covers: no file = an empty store; save then open gives back every field
 * of every subscription (strings at their maximum lengths, flags, times),
 * in order; remove keeps the order; find skips deleted subscriptions; the
 * limit (SL_SNS_SUBS_MAX) is SL_ELIMIT; a flipped byte anywhere, a
 * truncated file, an unknown flag (checksum fixed) and a newer version are
 * SL_ECORRUPT at open with a message naming the file and the fix; a save
 * leaves no temporary file behind.
 */
#include "broker/api/sns_store.h"

#include "common/bytes.h"
#include "common/checksum.h"
#include "common/error.h"

#include "tests/unit/test.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static void fresh_dir(void)
{
    char cmd[300];
    if (dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "cannot remove %s\n", dir);
        }
    }
    snprintf(dir, sizeof(dir), "/tmp/sl-sns-store-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
}

static void fill(struct sl_sns_sub *s, int i, bool longest)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "%08d-0000-4000-8000-000000000000", i);
    if (longest) {
        memset(s->topic, 't', SL_SNS_TOPIC_MAX);
        memset(s->endpoint, 'e', SL_SNS_ENDPOINT_MAX);
        memset(s->filter, 'f', SL_SNS_FILTER_MAX);
        memset(s->redrive, 'r', SL_SNS_TOPIC_MAX);
        memset(s->token, 'a', SL_SNS_TOKEN_MAX);
    } else {
        snprintf(s->topic, sizeof(s->topic), "topic-%d", i);
        snprintf(s->endpoint, sizeof(s->endpoint), "http://127.0.0.1:%d/hook", 9000 + i);
        snprintf(s->filter, sizeof(s->filter), "{\"n\": [%d]}", i);
    }
    snprintf(s->protocol, sizeof(s->protocol), "%s", i % 2 ? "sqs" : "https");
    s->flags = (uint32_t)i & SL_SNS_SUB_FLAGS_;
    s->created_ms = 1700000000000ull + (uint64_t)i;
}

static bool same(const struct sl_sns_sub *a, const struct sl_sns_sub *b)
{
    return strcmp(a->id, b->id) == 0 && strcmp(a->topic, b->topic) == 0 &&
           strcmp(a->protocol, b->protocol) == 0 && strcmp(a->endpoint, b->endpoint) == 0 &&
           strcmp(a->token, b->token) == 0 && strcmp(a->filter, b->filter) == 0 &&
           strcmp(a->redrive, b->redrive) == 0 && a->flags == b->flags &&
           a->created_ms == b->created_ms;
}

static int open_store(struct sl_sns_store **s, char *why, size_t n)
{
    why[0] = '\0';
    return sl_sns_store_open(dir, s, why, n);
}

/* Reads the file into buf; returns its length. */
static size_t read_all(uint8_t *buf, size_t cap)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/sns/subscriptions", dir);
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, cap) : -1;
    if (fd >= 0) {
        close(fd);
    }
    return n > 0 ? (size_t)n : 0;
}

static void write_all(const uint8_t *buf, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/sns/subscriptions", dir);
    int fd = open(path, O_WRONLY | O_TRUNC);
    if (fd < 0 || write(fd, buf, len) != (ssize_t)len) {
        perror("write");
        exit(1);
    }
    close(fd);
}

TEST(no_file_is_empty)
{
    fresh_dir();
    struct sl_sns_store *s = NULL;
    char why[512];
    CHECK_EQ(open_store(&s, why, sizeof(why)), SL_OK);
    CHECK_EQ(s->n, 0);
    sl_sns_store_close(s);
    sl_sns_store_close(NULL);
}

TEST(save_and_load_round_trip)
{
    fresh_dir();
    struct sl_sns_store *s = NULL;
    char why[512];
    CHECK_EQ(open_store(&s, why, sizeof(why)), SL_OK);
    struct sl_sns_sub *subs = calloc(5, sizeof(*subs));
    CHECK(subs != NULL);
    for (int i = 0; i < 5; i++) {
        fill(&subs[i], i, i == 3);
        CHECK_EQ(sl_sns_store_add(s, &subs[i], NULL), SL_OK);
    }
    CHECK_EQ(sl_sns_store_save(s, why, sizeof(why)), SL_OK);
    sl_sns_store_close(s);
    struct stat sb;
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s/sns/subscriptions.tmp", dir);
    CHECK(stat(tmp, &sb) != 0); /* renamed away */
    CHECK_EQ(open_store(&s, why, sizeof(why)), SL_OK);
    CHECK_EQ(s->n, 5);
    for (int i = 0; i < 5; i++) {
        CHECK(same(s->subs[i], &subs[i]));
    }
    /* remove keeps the order; find skips deleted ones */
    sl_sns_store_remove(s, s->subs[1]);
    CHECK_EQ(s->n, 4);
    CHECK(same(s->subs[1], &subs[2]));
    s->subs[0]->flags |= SL_SNS_SUB_DELETED;
    CHECK(sl_sns_store_find(s, subs[0].id) == NULL);
    CHECK(sl_sns_store_find(s, subs[4].id) == s->subs[3]);
    sl_sns_store_close(s);
    free(subs);
}

TEST(limit)
{
    fresh_dir();
    struct sl_sns_store *s = sl_sns_store_empty();
    CHECK(s != NULL);
    struct sl_sns_sub sub;
    fill(&sub, 1, false);
    for (uint32_t i = 0; i < SL_SNS_SUBS_MAX; i++) {
        CHECK_EQ(sl_sns_store_add(s, &sub, NULL), SL_OK);
    }
    CHECK_EQ(sl_sns_store_add(s, &sub, NULL), SL_ELIMIT);
    sl_sns_store_close(s);
}

TEST(damage_is_refused_with_the_fix)
{
    fresh_dir();
    struct sl_sns_store *s = NULL;
    char why[512];
    CHECK_EQ(open_store(&s, why, sizeof(why)), SL_OK);
    struct sl_sns_sub sub;
    fill(&sub, 2, false);
    CHECK_EQ(sl_sns_store_add(s, &sub, NULL), SL_OK);
    CHECK_EQ(sl_sns_store_save(s, why, sizeof(why)), SL_OK);
    sl_sns_store_close(s);
    static uint8_t good[8192], bad[8192];
    size_t len = read_all(good, sizeof(good));
    CHECK(len > 20);
    for (size_t at = 0; at < len; at++) { /* any flipped byte */
        memcpy(bad, good, len);
        bad[at] ^= 0x40;
        write_all(bad, len);
        s = NULL;
        CHECK_EQ(open_store(&s, why, sizeof(why)), SL_ECORRUPT);
        CHECK(s == NULL && strstr(why, "damaged") != NULL && strstr(why, "subscriptions") != NULL);
    }
    write_all(good, len - 1); /* truncated */
    CHECK_EQ(open_store(&s, why, sizeof(why)), SL_ECORRUPT);
    memcpy(bad, good, len); /* an unknown flag, checksum fixed: the structure check */
    bad[len - 8 - 8 - 1] = 0x80;
    sl_put_u64(bad + len - 8, sl_checksum64(bad, len - 8));
    write_all(bad, len);
    CHECK_EQ(open_store(&s, why, sizeof(why)), SL_ECORRUPT);
    memcpy(bad, good, len); /* a newer version */
    sl_put_u32(bad + 4, 2);
    sl_put_u64(bad + len - 8, sl_checksum64(bad, len - 8));
    write_all(bad, len);
    CHECK_EQ(open_store(&s, why, sizeof(why)), SL_ECORRUPT);
    write_all(good, len);
    CHECK_EQ(open_store(&s, why, sizeof(why)), SL_OK);
    CHECK(s->n == 1 && same(s->subs[0], &sub));
    sl_sns_store_close(s);
}

int main(void)
{
    RUN(no_file_is_empty);
    RUN(save_and_load_round_trip);
    RUN(limit);
    RUN(damage_is_refused_with_the_fix);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot remove %s\n", dir);
    }
    TEST_END();
}
