/* log.h - leveled logging to stderr, tagged by subsystem.
 *
 * The level is checked before any formatting (the macro tests it inline), so a
 * disabled debug line costs one compare. Never log per record above DEBUG.
 * Thread-safe: each line is formatted into a local buffer and written with one
 * write(2). Two line formats (sl_log_set_format):
 *   text  2026-12-04T18:00:00.123Z WARN  storage: message
 *         <4>storage: message           (stderr is the journal: syslog priority,
 *                                        the journal keeps the time)
 *   json  {"ts":"2026-12-04T18:00:00.123Z","level":"warn","subsys":"storage",
 *          "msg":"message"}             (one object per line)
 */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <stddef.h>
#include <stdint.h>

enum sl_log_level { SL_LOG_DEBUG = 0, SL_LOG_INFO, SL_LOG_WARN, SL_LOG_ERROR, SL_LOG_OFF };
enum sl_log_format { SL_LOG_TEXT = 0, SL_LOG_JSON };

extern int sl_log_level_min;

/* Sets the minimum level; returns SL_EINVAL for an unknown name. Names:
 * debug, info, warn, error, off. */
int sl_log_set_level_name(const char *name);
void sl_log_set_level(enum sl_log_level level);

/* Sets the line format (default text). In text format, when stderr is the
 * journal (JOURNAL_STREAM names stderr's device and inode, as systemd sets it
 * for StandardError=journal), lines start with the syslog priority (<3> error,
 * <4> warning, <6> info, <7> debug) instead of a timestamp. Call before other
 * threads log (it reads the environment). */
void sl_log_set_format(enum sl_log_format format);

/* Escapes `len` bytes of `in` (borrowed; need not be NUL-terminated) as the
 * inside of a JSON string: \" and \\, \n \r \t \b \f, other control
 * characters and DEL as \u00XX, each byte of invalid UTF-8 (overlong forms,
 * surrogates, past U+10FFFF, truncated sequences) as \ufffd. Writes at most
 * cap - 1 bytes and a NUL, stopping before a character that does not fit whole.
 * Returns the bytes written (without the NUL). */
size_t sl_log_json_escape(char *out, size_t cap, const char *in, size_t len);

__attribute__((format(printf, 3, 4))) void sl_log_write(enum sl_log_level level, const char *subsys,
                                                        const char *fmt, ...);

#define sl_log(level, subsys, ...)                                                                 \
    do {                                                                                           \
        if ((int)(level) >= sl_log_level_min) {                                                    \
            sl_log_write((level), (subsys), __VA_ARGS__);                                          \
        }                                                                                          \
    } while (0)

#define sl_debug(subsys, ...) sl_log(SL_LOG_DEBUG, subsys, __VA_ARGS__)
#define sl_info(subsys, ...)  sl_log(SL_LOG_INFO, subsys, __VA_ARGS__)
#define sl_warn(subsys, ...)  sl_log(SL_LOG_WARN, subsys, __VA_ARGS__)
#define sl_error(subsys, ...) sl_log(SL_LOG_ERROR, subsys, __VA_ARGS__)

/* Rate limiter for repeated errors: at most `burst` lines per `interval_ms`.
 * Embed one per call site (static) or per object; not thread-safe. */
struct sl_log_ratelimit {
    uint64_t window_start_ms;
    uint32_t interval_ms;
    uint32_t burst;
    uint32_t printed;
    uint32_t suppressed;
};

/* Returns 1 if a line may be printed now; counts the suppressed ones and
 * reports them at the start of the next window. */
int sl_log_ratelimit_ok(struct sl_log_ratelimit *rl);

#endif
