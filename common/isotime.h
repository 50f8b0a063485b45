/* isotime.h - ISO 8601 times ("2026-12-01T10:00:00Z", "...+02:00",
 * "2026-12-01 10:00", "2026-12-01"; no zone = UTC) as milliseconds since
 * the epoch: the CLI's --from time:..., the console's from=time:...; and
 * back (UTC, "Z"): log lines, the CLI's output, push payloads. */
#ifndef SL_ISOTIME_H
#define SL_ISOTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for any formatted time: a year of up to 9 digits (UINT64_MAX ms) + NUL. */
#define SL_ISOTIME_FORMAT_MAX 40u

/* SL_OK, or SL_EINVAL for anything else (and for times before 1970). */
int sl_time_parse_iso8601(const char *s, uint64_t *ms_out);

/* "2026-12-01T10:00:00.123Z" (with_ms) or "2026-12-01T10:00:00Z" and a NUL
 * into out; returns the length. */
size_t sl_time_format_iso8601(uint64_t ms, bool with_ms, char out[SL_ISOTIME_FORMAT_MAX]);

#endif
