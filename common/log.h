/* log.h - leveled logging to stderr, tagged by subsystem.
 *
 * The level is checked before any formatting (the macro tests it inline), so a
 * disabled debug line costs one compare. Never log per record above DEBUG.
 * Thread-safe: each line is formatted into a local buffer and written with one
 * write(2).
 */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <stdint.h>

enum sl_log_level { SL_LOG_DEBUG = 0, SL_LOG_INFO, SL_LOG_WARN, SL_LOG_ERROR, SL_LOG_OFF };

extern int sl_log_level_min;

/* Sets the minimum level; returns SL_EINVAL for an unknown name. Names:
 * debug, info, warn, error, off. */
int sl_log_set_level_name(const char *name);
void sl_log_set_level(enum sl_log_level level);

__attribute__((format(printf, 3, 4))) void sl_log_write(enum sl_log_level level,
                                                         const char *subsys, const char *fmt, ...);

#define sl_log(level, subsys, ...)                                                                 \
    do {                                                                                           \
        if ((int)(level) >= sl_log_level_min) {                                                    \
            sl_log_write((level), (subsys), __VA_ARGS__);                                          \
        }                                                                                          \
    } while (0)

#define sl_debug(subsys, ...) sl_log(SL_LOG_DEBUG, subsys, __VA_ARGS__)
#define sl_info(subsys, ...) sl_log(SL_LOG_INFO, subsys, __VA_ARGS__)
#define sl_warn(subsys, ...) sl_log(SL_LOG_WARN, subsys, __VA_ARGS__)
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
