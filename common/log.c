/* log.c - leveled stderr logging and SL_ASSERT's failure path.
 *
 * One formatting path: the message is formatted once (vsnprintf), then framed
 * by the line format (text, text for the journal, JSON; see log.h). One
 * write(2) per line so concurrent threads do not interleave within a line.
 * The format is set once at start-up, before other threads run.
 *
 * The journal is recognised the way systemd documents it (systemd.exec(5),
 * $JOURNAL_STREAM): the variable holds "DEVICE:INODE" of the stream systemd
 * connected, and only when stderr is that very file (not a descendant's
 * redirection) are the lines prefixed with the syslog priority. The values
 * are sd-daemon.h's SD_ERR (3), SD_WARNING (4), SD_INFO (6), SD_DEBUG (7),
 * written here so common/ does not include libsystemd.
 */
#include "common/log.h"

#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/isotime.h"
#include "common/utf8.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MSG_LEN_MAX 2048
/* A JSON line: the frame (ts, level, subsys: ~128 bytes) and the escaped message, which
 * is longer than the message only where it escapes (a control byte takes 6). */
#define LINE_LEN_MAX (2 * MSG_LEN_MAX + 256)

int sl_log_level_min = SL_LOG_INFO;
static enum sl_log_format log_format = SL_LOG_TEXT;
static bool log_journal; /* stderr is the journal: text lines carry <priority> */

static const char *const level_names[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
static const char *const level_json[] = {"debug", "info", "warn", "error"};
static const int level_syslog[] = {7, 6, 4, 3};
_Static_assert(SL_LOG_ERROR == 3, "the level tables have SL_LOG_ERROR + 1 entries");

void sl_log_set_level(enum sl_log_level level)
{
    sl_log_level_min = (int)level;
}

int sl_log_set_level_name(const char *name)
{
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i <= SL_LOG_OFF; i++) {
        if (strcmp(name, names[i]) == 0) {
            sl_log_level_min = i;
            return SL_OK;
        }
    }
    return SL_EINVAL;
}

static bool stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev = 0, ino = 0;
    if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2) {
        return false;
    }
    struct stat st;
    if (fstat(STDERR_FILENO, &st) != 0) {
        return false;
    }
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void sl_log_set_format(enum sl_log_format format)
{
    log_format = format;
    log_journal = stderr_is_journal();
}

size_t sl_log_json_escape(char *out, size_t cap, const char *in, size_t len)
{
    SL_ASSERT(out != NULL && cap > 0);
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        char esc[8];
        const char *piece = esc;
        size_t n = 0, used = 1;
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c == '\b' ? 'b' : 'f';
            n = 2;
        } else if (c < 0x20 || c == 0x7F) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        } else if (c < 0x80) {
            piece = (const char *)&s[i];
            n = 1;
        } else if ((used = sl_utf8_seq(&s[i], len - i)) > 0) {
            piece = (const char *)&s[i];
            n = used;
        } else {
            memcpy(esc, "\\ufffd", 6); /* one replacement per invalid byte */
            n = 6;
            used = 1;
        }
        if (o + n >= cap) {
            break;
        }
        memcpy(out + o, piece, n);
        o += n;
        i += used;
    }
    out[o] = '\0';
    SL_ASSERT(o < cap);
    return o;
}

/* Frames one formatted message as a line in the current format; returns its length
 * (ending in a newline). */
static size_t frame_line(char *line, size_t cap, enum sl_log_level level, const char *subsys,
                         const char *msg, size_t msg_len)
{
    SL_ASSERT(cap > MSG_LEN_MAX + 128);
    size_t n = 0;
    int k = 0;
    if (log_format == SL_LOG_JSON) {
        char ts[SL_ISOTIME_FORMAT_MAX];
        sl_time_format_iso8601(sl_clock_wall_ms(), true, ts);
        k = snprintf(line, cap, "{\"ts\":\"%s\",\"level\":\"%s\",\"subsys\":\"", ts,
                     level_json[level]);
        n = (size_t)k;
        n += sl_log_json_escape(line + n, cap - n - 32, subsys, strlen(subsys));
        n += (size_t)snprintf(line + n, cap - n, "\",\"msg\":\"");
        n += sl_log_json_escape(line + n, cap - n - 3, msg, msg_len);
        memcpy(line + n, "\"}\n", 3);
        return n + 3;
    }
    if (log_journal) {
        k = snprintf(line, cap, "<%d>%s: ", level_syslog[level], subsys);
    } else {
        n = sl_time_format_iso8601(sl_clock_wall_ms(), true, line);
        k = snprintf(line + n, cap - n, " %s %s: ", level_names[level], subsys);
    }
    n += k > 0 ? (size_t)k : 0;
    n = n < cap - msg_len - 1 ? n : cap - msg_len - 1;
    memcpy(line + n, msg, msg_len);
    n += msg_len;
    line[n++] = '\n';
    return n;
}

void sl_log_write(enum sl_log_level level, const char *subsys, const char *fmt, ...)
{
    if (level > SL_LOG_ERROR) {
        level = SL_LOG_ERROR;
    }
    char msg[MSG_LEN_MAX];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t msg_len = k < 0 ? 0 : (size_t)k < sizeof(msg) ? (size_t)k : sizeof(msg) - 1;
    char line[LINE_LEN_MAX];
    size_t n = frame_line(line, sizeof(line), level, subsys, msg, msg_len);
    SL_ASSERT(n <= sizeof(line));
    /* A failed log write has nowhere to be reported; drop it. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

int sl_log_ratelimit_ok(struct sl_log_ratelimit *rl)
{
    uint64_t now_ms = sl_clock_mono_ms();
    if (now_ms - rl->window_start_ms >= rl->interval_ms) {
        if (rl->suppressed > 0) {
            sl_log_write(SL_LOG_WARN, "log", "%u similar messages suppressed", rl->suppressed);
        }
        rl->window_start_ms = now_ms;
        rl->printed = 0;
        rl->suppressed = 0;
    }
    if (rl->printed < rl->burst) {
        rl->printed++;
        return 1;
    }
    rl->suppressed++;
    return 0;
}

void sl_assert_fail(const char *expr, const char *file, int line, const char *func)
{
    sl_log_write(SL_LOG_ERROR, "assert", "%s:%d: %s: assertion failed: %s", file, line, func, expr);
    abort();
}
