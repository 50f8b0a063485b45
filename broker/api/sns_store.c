/* sns_store.c - the SNS subscriptions file (format in sns_store.h).
 *
 * Crash safety: the whole file is written to a temporary name, fsynced,
 * renamed over the old one, then the directory is fsynced: a crash leaves
 * the old file or the new one, never a mix; the checksum catches a torn or
 * damaged file at load, which then refuses to start (the operator restores
 * it or removes it) rather than silently dropping subscriptions.
 *
 * Threading: the main loop.
 */
#include "broker/api/sns_store.h"

#include "common/assert.h"
#include "common/bytes.h"
#include "common/checksum.h"
#include "common/error.h"
#include "common/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_MAGIC   0x4E534C53u /* "SLSN" little-endian */
#define FILE_VERSION 1u
#define FILE_HEAD    12u
#define ENTRY_MAX                                                                                  \
    (7u * 2u + SL_SNS_ID_MAX + SL_SNS_TOPIC_MAX + SL_SNS_PROTOCOL_MAX + SL_SNS_ENDPOINT_MAX +      \
     SL_SNS_TOKEN_MAX + SL_SNS_FILTER_MAX + SL_SNS_TOPIC_MAX + 1u + 8u)
#define FILE_MAX (FILE_HEAD + SL_SNS_SUBS_MAX * ENTRY_MAX + 8u)

static uint8_t *put_str(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    SL_ASSERT(n <= UINT16_MAX);
    p[0] = (uint8_t)(n & 0xff);
    p[1] = (uint8_t)(n >> 8);
    memcpy(p + 2, s, n);
    return p + 2 + n;
}

static uint8_t *encode(uint8_t *p, const struct sl_sns_sub *s)
{
    p = put_str(p, s->id);
    p = put_str(p, s->topic);
    p = put_str(p, s->protocol);
    p = put_str(p, s->endpoint);
    p = put_str(p, s->token);
    p = put_str(p, s->filter);
    p = put_str(p, s->redrive);
    *p++ = (uint8_t)s->flags;
    sl_put_u64(p, s->created_ms);
    return p + 8;
}

static void take_str(struct sl_reader *d, char *dst, size_t max)
{
    const uint8_t *w = sl_reader_take(d, 2);
    size_t n = w == NULL ? 0 : (size_t)w[0] | (size_t)w[1] << 8;
    const uint8_t *s = n <= max ? sl_reader_take(d, n) : NULL;
    if (s == NULL || memchr(s, 0, n) != NULL) {
        d->bad = true;
        dst[0] = '\0';
        return;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static int decode(struct sl_reader *d, struct sl_sns_sub *s)
{
    memset(s, 0, sizeof(*s));
    take_str(d, s->id, SL_SNS_ID_MAX);
    take_str(d, s->topic, SL_SNS_TOPIC_MAX);
    take_str(d, s->protocol, SL_SNS_PROTOCOL_MAX);
    take_str(d, s->endpoint, SL_SNS_ENDPOINT_MAX);
    take_str(d, s->token, SL_SNS_TOKEN_MAX);
    take_str(d, s->filter, SL_SNS_FILTER_MAX);
    take_str(d, s->redrive, SL_SNS_TOPIC_MAX);
    const uint8_t *f = sl_reader_take(d, 1 + 8);
    if (d->bad || f == NULL || (f[0] & ~SL_SNS_SUB_FLAGS_) != 0 || s->id[0] == '\0' ||
        s->topic[0] == '\0') {
        return SL_ECORRUPT;
    }
    s->flags = f[0];
    s->created_ms = sl_get_u64(f + 1);
    return SL_OK;
}

static int read_file(const char *path, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    int fd = sl_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) {
        return errno == ENOENT ? SL_ENOTFOUND : SL_EIO;
    }
    struct stat sb;
    int rc = fstat(fd, &sb) != 0 ? SL_EIO : SL_OK;
    if (rc == SL_OK && (sb.st_size < (off_t)(FILE_HEAD + 8) || sb.st_size > (off_t)FILE_MAX)) {
        rc = SL_ECORRUPT;
    }
    size_t got = 0;
    if (rc == SL_OK) {
        *buf = malloc((size_t)sb.st_size);
        rc = *buf == NULL ? SL_ENOMEM : sl_pread_full(fd, *buf, (size_t)sb.st_size, 0, &got);
    }
    close(fd);
    if (rc == SL_OK && got != (size_t)sb.st_size) {
        rc = SL_EIO;
    }
    *len = got;
    return rc;
}

int sl_sns_store_parse(struct sl_sns_store *s, const uint8_t *buf, size_t len)
{
    if (len < FILE_HEAD + 8 || len > FILE_MAX || sl_get_u32(buf) != FILE_MAGIC ||
        sl_get_u32(buf + 4) != FILE_VERSION ||
        sl_get_u64(buf + len - 8) != sl_checksum64(buf, len - 8)) {
        return SL_ECORRUPT;
    }
    uint32_t count = sl_get_u32(buf + 8);
    if (count > SL_SNS_SUBS_MAX) {
        return SL_ECORRUPT;
    }
    struct sl_reader d = {.p = buf + FILE_HEAD, .left = len - FILE_HEAD - 8};
    struct sl_sns_sub *sub = malloc(sizeof(*sub));
    int rc = sub == NULL ? SL_ENOMEM : SL_OK;
    for (uint32_t i = 0; rc == SL_OK && i < count; i++) {
        rc = decode(&d, sub);
        if (rc == SL_OK) {
            rc = sl_sns_store_add(s, sub, NULL);
        }
    }
    if (rc == SL_OK && d.left != 0) {
        rc = SL_ECORRUPT;
    }
    free(sub);
    return rc;
}

static int load(struct sl_sns_store *s)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = read_file(s->path, &buf, &len);
    if (rc == SL_ENOTFOUND) {
        return SL_OK;
    }
    if (rc == SL_OK) {
        rc = sl_sns_store_parse(s, buf, len);
    }
    free(buf);
    return rc;
}

int sl_sns_store_open(const char *data_dir, struct sl_sns_store **out, char *why, size_t why_len)
{
    *out = NULL;
    struct sl_sns_store *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return SL_ENOMEM;
    }
    snprintf(s->dir, sizeof(s->dir), "%s/sns", data_dir);
    snprintf(s->path, sizeof(s->path), "%s/sns/subscriptions", data_dir);
    snprintf(s->tmp, sizeof(s->tmp), "%s/sns/subscriptions.tmp", data_dir);
    int rc = load(s);
    if (rc != SL_OK) {
        snprintf(why, why_len,
                 rc == SL_ECORRUPT
                     ? "%s is damaged (checksum or structure): restore it from a backup, or "
                       "remove it and subscribe again (the topics' queue groups stay)"
                     : "cannot read %s: %s",
                 s->path, sl_strerror(rc));
        sl_sns_store_close(s);
        return rc;
    }
    *out = s;
    return SL_OK;
}

struct sl_sns_store *sl_sns_store_empty(void)
{
    return calloc(1, sizeof(struct sl_sns_store));
}

void sl_sns_store_close(struct sl_sns_store *s)
{
    if (s == NULL) {
        return;
    }
    for (uint32_t i = 0; i < s->n; i++) {
        free(s->subs[i]);
    }
    free(s->subs);
    free(s);
}

int sl_sns_store_save(struct sl_sns_store *s, char *why, size_t why_len)
{
    SL_ASSERT(s->n <= SL_SNS_SUBS_MAX);
    uint8_t *buf = malloc(FILE_HEAD + (size_t)s->n * ENTRY_MAX + 8);
    if (buf == NULL) {
        snprintf(why, why_len, "out of memory writing %s", s->path);
        return SL_ENOMEM;
    }
    sl_put_u32(buf, FILE_MAGIC);
    sl_put_u32(buf + 4, FILE_VERSION);
    sl_put_u32(buf + 8, s->n);
    uint8_t *p = buf + FILE_HEAD;
    for (uint32_t i = 0; i < s->n; i++) {
        p = encode(p, s->subs[i]);
    }
    size_t len = (size_t)(p - buf);
    SL_ASSERT(len <= FILE_MAX - 8);
    sl_put_u64(p, sl_checksum64(buf, len));
    len += 8;
    const char *step;
    int rc = sl_file_replace(s->dir, s->tmp, s->path, (const void *const[]){buf}, &len, 1, &step);
    free(buf);
    if (rc != SL_OK) {
        snprintf(why, why_len, "cannot %s %s: %s%s", step, s->path, sl_strerror(rc),
                 rc == SL_ENOSPC ? " (free space on the data disk)" : "");
    }
    return rc;
}

struct sl_sns_sub *sl_sns_store_find(const struct sl_sns_store *s, const char *id)
{
    for (uint32_t i = 0; i < s->n; i++) {
        if ((s->subs[i]->flags & SL_SNS_SUB_DELETED) == 0 && strcmp(s->subs[i]->id, id) == 0) {
            return s->subs[i];
        }
    }
    return NULL;
}

int sl_sns_store_add(struct sl_sns_store *s, const struct sl_sns_sub *sub, struct sl_sns_sub **out)
{
    if (s->n == SL_SNS_SUBS_MAX) {
        return SL_ELIMIT;
    }
    struct sl_sns_sub **a = realloc(s->subs, (s->n + 1) * sizeof(*a));
    if (a == NULL) {
        return SL_ENOMEM;
    }
    s->subs = a;
    struct sl_sns_sub *copy = malloc(sizeof(*copy));
    if (copy == NULL) {
        return SL_ENOMEM;
    }
    *copy = *sub;
    s->subs[s->n++] = copy;
    if (out != NULL) {
        *out = copy;
    }
    return SL_OK;
}

void sl_sns_store_remove(struct sl_sns_store *s, struct sl_sns_sub *sub)
{
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->subs[i] == sub) {
            free(sub);
            memmove(&s->subs[i], &s->subs[i + 1], (s->n - i - 1) * sizeof(s->subs[0]));
            s->n--; /* the order stays: listings page by position */
            return;
        }
    }
    SL_ASSERT(false); /* only subscriptions of this store are removed */
}
