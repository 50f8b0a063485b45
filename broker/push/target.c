/* target.c - a push target's settings and the file that keeps them (see
 * target.h). */
#include "broker/push/target.h"

#include "broker/push/forward.h"

#include "common/assert.h"
#include "common/bytes.h"
#include "common/checksum.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_MAGIC   0x54504C53u /* "SLPT" little-endian */
#define FILE_VERSION 3u /* 2: + transform; 3: + replay name; 1 and 2 are still read */
#define FILE_DIR     "push"
#define FILE_NAME    "targets"
#define FILE_TMP     "targets.tmp"
#define FILE_HEAD    12u
#define ENTRY_FIXED  (1u + 1u + 2u + 1u + 1u + 6u * 4u)
#define ENTRY_MAX    (ENTRY_FIXED + 2u * SL_PUSH_NAME_MAX + SL_PUSH_URL_MAX + 2u + \
                      SL_PUSH_TRANSFORM_SPEC_MAX + 1u + SL_PUSH_REPLAY_NAME_MAX)
#define FILE_MAX     (FILE_HEAD + SL_PUSH_TARGETS_MAX * ENTRY_MAX + 8u)

#define DEFAULT_BATCH       10u
#define DEFAULT_TIMEOUT_MS  30000u
#define DEFAULT_RETRY_MS    1000u
#define DEFAULT_RETRY_MAX   300000u

static int bad(char *why, size_t why_len, const char *fmt, const char *field, uint32_t a,
               uint32_t b)
{
    int n = snprintf(why, why_len, "%s: ", field);
    if (n >= 0 && (size_t)n < why_len) {
        snprintf(why + n, why_len - (size_t)n, fmt, a, b);
    }
    return SL_EINVAL;
}

static bool url_ok(const char *u)
{
    const char *rest = strncmp(u, "http://", 7) == 0    ? u + 7
                       : strncmp(u, "https://", 8) == 0 ? u + 8
                                                        : NULL;
    if (rest == NULL || rest[0] == '\0' || rest[0] == '/') {
        return false;
    }
    for (const char *p = u; *p != '\0'; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f) {
            return false; /* a raw space or control byte would reach the request line */
        }
    }
    return true;
}

/* A transform compiles, on an eventbridge target (the only format whose
 * body is one event). */
static int transform_check(const struct sl_push_target *t, char *why, size_t why_len)
{
    if (t->transform[0] == '\0') {
        return SL_OK;
    }
    if (t->format != SL_PUSH_FORMAT_EVENTBRIDGE) {
        snprintf(why, why_len, "transform: only a target of format eventbridge has one");
        return SL_EINVAL;
    }
    struct sl_push_transform *tf = NULL;
    char twhy[256];
    int rc = sl_push_transform_compile(t->transform, strlen(t->transform), &tf, twhy,
                                       sizeof(twhy));
    sl_push_transform_free(tf);
    if (rc != SL_OK) {
        snprintf(why, why_len, "transform: %s", twhy);
        return rc == SL_ENOMEM ? SL_ENOMEM : SL_EINVAL;
    }
    return SL_OK;
}

int sl_push_target_check(struct sl_push_target *t, char *why, size_t why_len)
{
    if (t->stream[0] == '\0' || t->group[0] == '\0') {
        snprintf(why, why_len, "a target needs a stream and a queue group");
        return SL_EINVAL;
    }
    const char *dest = sl_push_forward_stream(t->url);
    if (dest == NULL && !url_ok(t->url)) {
        snprintf(why, why_len,
                 "url: \"%.200s\" is neither an http:// or https:// URL with a host (no "
                 "spaces) nor stream:NAME",
                 t->url);
        return SL_EINVAL;
    }
    if (dest != NULL && (dest[0] == '\0' || strlen(dest) > SL_PUSH_NAME_MAX)) {
        snprintf(why, why_len, "url: stream:NAME needs a stream name of 1 .. %u bytes",
                 SL_PUSH_NAME_MAX);
        return SL_EINVAL;
    }
    if (dest != NULL && strcmp(dest, t->stream) == 0) {
        snprintf(why, why_len, "url: a target cannot forward %s into itself (every record "
                 "would come back to the group forever)", t->stream);
        return SL_EINVAL;
    }
    if (t->format >= SL_PUSH_FORMAT_COUNT) {
        return bad(why, why_len, "unknown format %u (0 .. %u)", "format", t->format,
                   SL_PUSH_FORMAT_COUNT - 1);
    }
    if (dest != NULL && !sl_push_forward_format_ok((enum sl_push_format)t->format)) {
        snprintf(why, why_len, "format: a stream: target forwards records as sluice (raw), sns "
                 "or eventbridge messages, not as %s batches",
                 sl_push_format_name((enum sl_push_format)t->format));
        return SL_EINVAL;
    }
    t->batch_size = t->batch_size == 0 ? DEFAULT_BATCH : t->batch_size;
    if ((t->format == SL_PUSH_FORMAT_EVENTBRIDGE || t->format == SL_PUSH_FORMAT_SNS_HTTP) &&
        dest == NULL) {
        t->batch_size = 1; /* EventBridge and SNS send one event per call */
    }
    t->concurrency = t->concurrency == 0 ? 1 : t->concurrency;
    t->timeout_ms = t->timeout_ms == 0 ? DEFAULT_TIMEOUT_MS : t->timeout_ms;
    t->retry_base_ms = t->retry_base_ms == 0 ? DEFAULT_RETRY_MS : t->retry_base_ms;
    t->retry_max_ms = t->retry_max_ms == 0 ? DEFAULT_RETRY_MAX : t->retry_max_ms;
    if (t->batch_size > SL_PUSH_BATCH_MAX) {
        return bad(why, why_len, "%u records, more than %u", "batch_size", t->batch_size,
                   SL_PUSH_BATCH_MAX);
    }
    if (t->batch_window_ms > SL_PUSH_WINDOW_MAX_MS) {
        return bad(why, why_len, "%u ms, more than %u", "batch_window", t->batch_window_ms,
                   SL_PUSH_WINDOW_MAX_MS);
    }
    if (t->concurrency > SL_PUSH_CONCURRENCY_MAX) {
        return bad(why, why_len, "%u, more than %u", "concurrency", t->concurrency,
                   SL_PUSH_CONCURRENCY_MAX);
    }
    if (t->timeout_ms < SL_PUSH_TIMEOUT_MIN_MS || t->timeout_ms > SL_PUSH_TIMEOUT_MAX_MS) {
        return bad(why, why_len, "must be %u .. %u ms", "timeout", SL_PUSH_TIMEOUT_MIN_MS,
                   SL_PUSH_TIMEOUT_MAX_MS);
    }
    if (t->retry_max_ms > SL_PUSH_RETRY_MAX_MS || t->retry_base_ms > t->retry_max_ms) {
        return bad(why, why_len, "the first backoff (%u ms) must not pass the cap (%u ms, "
                   "at most 1 h)", "retry", t->retry_base_ms, t->retry_max_ms);
    }
    if (t->replay_name[0] != '\0' &&
        (t->format != SL_PUSH_FORMAT_EVENTBRIDGE ||
         !sl_utf8_valid(t->replay_name, strlen(t->replay_name)))) {
        snprintf(why, why_len, "replay_name: only a target of format eventbridge has one, in "
                 "UTF-8");
        return SL_EINVAL;
    }
    return transform_check(t, why, why_len);
}

/* ---- the file ---- */

static uint8_t *put_str(uint8_t *p, const char *s, uint32_t width)
{
    uint32_t n = (uint32_t)strlen(s);
    if (width == 1) {
        *p++ = (uint8_t)n;
    } else {
        p[0] = (uint8_t)(n & 0xff);
        p[1] = (uint8_t)(n >> 8);
        p += 2;
    }
    memcpy(p, s, n);
    return p + n;
}

static uint8_t *encode(uint8_t *p, const struct sl_push_target *t)
{
    p = put_str(p, t->stream, 1);
    p = put_str(p, t->group, 1);
    p = put_str(p, t->url, 2);
    *p++ = t->format;
    *p++ = t->insecure ? 1u : 0u;
    const uint32_t v[6] = {t->batch_size,  t->batch_window_ms, t->concurrency,
                           t->timeout_ms,  t->retry_base_ms,   t->retry_max_ms};
    for (int i = 0; i < 6; i++, p += 4) {
        sl_put_u32(p, v[i]);
    }
    p = put_str(p, t->transform, 2);
    return put_str(p, t->replay_name, 1);
}

static void take_str(struct sl_reader *d, uint32_t width, char *dst, uint32_t max)
{
    const uint8_t *w = sl_reader_take(d, width);
    uint32_t n = w == NULL ? 0 : width == 1 ? w[0] : (uint32_t)w[0] | (uint32_t)w[1] << 8;
    const uint8_t *s = n <= max ? sl_reader_take(d, n) : NULL;
    if (s == NULL || memchr(s, 0, n) != NULL) {
        d->bad = true;
        dst[0] = '\0';
        return;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static int decode(struct sl_reader *d, struct sl_push_target *t, uint32_t version)
{
    memset(t, 0, sizeof(*t));
    take_str(d, 1, t->stream, SL_PUSH_NAME_MAX);
    take_str(d, 1, t->group, SL_PUSH_NAME_MAX);
    take_str(d, 2, t->url, SL_PUSH_URL_MAX);
    const uint8_t *f = sl_reader_take(d, 2 + 6 * 4);
    if (d->bad || f == NULL || (f[1] & ~1u) != 0) {
        return SL_ECORRUPT;
    }
    t->format = f[0];
    t->insecure = (f[1] & 1u) != 0;
    uint32_t *v[6] = {&t->batch_size,  &t->batch_window_ms, &t->concurrency,
                      &t->timeout_ms,  &t->retry_base_ms,   &t->retry_max_ms};
    for (int i = 0; i < 6; i++) {
        *v[i] = sl_get_u32(f + 2 + 4 * i);
    }
    if (version >= 2) {
        take_str(d, 2, t->transform, SL_PUSH_TRANSFORM_SPEC_MAX);
    }
    if (version >= 3) {
        take_str(d, 1, t->replay_name, SL_PUSH_REPLAY_NAME_MAX);
    }
    if (d->bad) {
        return SL_ECORRUPT;
    }
    char why[64];
    return sl_push_target_check(t, why, sizeof(why)) == SL_OK ? SL_OK : SL_ECORRUPT;
}

static void path_of(char *out, size_t cap, const char *data_dir, const char *name)
{
    snprintf(out, cap, "%s/%s%s%s", data_dir, FILE_DIR, name[0] != '\0' ? "/" : "", name);
}

int sl_push_targets_load(const char *data_dir, struct sl_push_target **out, uint32_t *n,
                         char *why, size_t why_len)
{
    *out = NULL;
    *n = 0;
    char path[4096];
    path_of(path, sizeof(path), data_dir, FILE_NAME);
    int fd = sl_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) {
        if (errno == ENOENT) {
            return SL_OK;
        }
        snprintf(why, why_len, "cannot open %s: %s", path, strerror(errno));
        return SL_EIO;
    }
    struct stat sb;
    uint8_t *buf = NULL;
    size_t got = 0;
    int rc = fstat(fd, &sb) != 0 ? SL_EIO : SL_OK;
    if (rc == SL_OK && (sb.st_size < (off_t)(FILE_HEAD + 8) || sb.st_size > (off_t)FILE_MAX)) {
        rc = SL_ECORRUPT;
    }
    if (rc == SL_OK) {
        buf = malloc((size_t)sb.st_size);
        rc = buf == NULL ? SL_ENOMEM : sl_pread_full(fd, buf, (size_t)sb.st_size, 0, &got);
    }
    close(fd);
    if (rc == SL_OK && got != (size_t)sb.st_size) {
        rc = SL_EIO;
    }
    size_t len = got;
    uint32_t version = rc == SL_OK ? sl_get_u32(buf + 4) : 0;
    if (rc == SL_OK && (sl_get_u32(buf) != FILE_MAGIC || version < 1u || version > FILE_VERSION ||
                        sl_get_u64(buf + len - 8) != sl_checksum64(buf, len - 8))) {
        rc = SL_ECORRUPT;
    }
    uint32_t count = rc == SL_OK ? sl_get_u32(buf + 8) : 0;
    if (rc == SL_OK && count > SL_PUSH_TARGETS_MAX) {
        rc = SL_ECORRUPT;
    }
    struct sl_push_target *t = NULL;
    if (rc == SL_OK && count > 0) {
        t = calloc(count, sizeof(*t));
        rc = t == NULL ? SL_ENOMEM : SL_OK;
    }
    struct sl_reader d = {.p = buf + FILE_HEAD, .left = len - FILE_HEAD - 8};
    for (uint32_t i = 0; rc == SL_OK && i < count; i++) {
        rc = decode(&d, &t[i], version);
    }
    if (rc == SL_OK && d.left != 0) {
        rc = SL_ECORRUPT;
    }
    free(buf);
    if (rc != SL_OK) {
        free(t);
        if (rc == SL_ECORRUPT) {
            snprintf(why, why_len,
                     "%s is damaged (checksum or structure): restore it from a backup, or "
                     "remove it and add the push targets again",
                     path);
        } else if (why[0] == '\0') {
            snprintf(why, why_len, "cannot read %s: %s", path, sl_strerror(rc));
        }
        return rc;
    }
    *out = t;
    *n = count;
    return SL_OK;
}

int sl_push_targets_save(const char *data_dir, const struct sl_push_target *t, uint32_t n,
                         char *why, size_t why_len)
{
    SL_ASSERT(n <= SL_PUSH_TARGETS_MAX);
    char dir[4096], tmp[4096], path[4096];
    path_of(dir, sizeof(dir), data_dir, "");
    path_of(tmp, sizeof(tmp), data_dir, FILE_TMP);
    path_of(path, sizeof(path), data_dir, FILE_NAME);
    uint8_t *buf = malloc(FILE_HEAD + (size_t)n * ENTRY_MAX + 8);
    if (buf == NULL) {
        snprintf(why, why_len, "out of memory writing %s", path);
        return SL_ENOMEM;
    }
    sl_put_u32(buf, FILE_MAGIC);
    sl_put_u32(buf + 4, FILE_VERSION);
    sl_put_u32(buf + 8, n);
    uint8_t *p = buf + FILE_HEAD;
    for (uint32_t i = 0; i < n; i++) {
        p = encode(p, &t[i]);
    }
    size_t len = (size_t)(p - buf);
    sl_put_u64(p, sl_checksum64(buf, len));
    len += 8;
    const char *step;
    int rc = sl_file_replace(dir, tmp, path, (const void *const[]){buf}, &len, 1, &step);
    free(buf);
    if (rc != SL_OK) {
        snprintf(why, why_len, "cannot %s %s: %s%s", step, path,
                 sl_strerror(rc), rc == SL_ENOSPC ? " (free space on the data disk)" : "");
    }
    return rc;
}
