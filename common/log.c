/* log.c - leveled stderr logging and SL_ASSERT's failure path.
 *
 * Line format: "2026-11-25T20:30:48.123Z WARN  storage: message\n". One
 * write(2) per line so concurrent threads do not interleave within a line.
 */
#include "common/log.h"

#include "common/assert.h"
#include "common/clock.h"
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int sl_log_level_min = SL_LOG_INFO;

static const char *const level_names[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};

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

void sl_log_write(enum sl_log_level level, const char *subsys, const char *fmt, ...)
{
    char line[2048];
    uint64_t now_ms = sl_clock_wall_ms();
    time_t secs = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    int k = snprintf(line + n, sizeof(line) - n, ".%03uZ %s %s: ", (unsigned)(now_ms % 1000),
                     level_names[level <= SL_LOG_ERROR ? level : SL_LOG_ERROR], subsys);
    if (k > 0) {
        n += (size_t)k;
    }
    va_list ap;
    va_start(ap, fmt);
    k = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (k > 0) {
        n += (size_t)k < sizeof(line) - n - 1 ? (size_t)k : sizeof(line) - n - 2;
    }
    line[n++] = '\n';
    /* A failed log write has nowhere to be reported; drop it. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

int sl_log_ratelimit_ok(struct sl_log_ratelimit *rl)
{
    uint64_t now_ms = sl_clock_mono_ns() / 1000000u;
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
    sl_log_write(SL_LOG_ERROR, "assert", "%s:%d: %s: assertion failed: %s", file, line, func,
                 expr);
    abort();
}
