/* isotime.h - ISO 8601 times ("2026-12-01T10:00:00Z", "...+02:00",
 * "2026-12-01 10:00", "2026-12-01"; no zone = UTC) as milliseconds since
 * the epoch: the CLI's --from time:..., the console's from=time:... */
#ifndef SL_ISOTIME_H
#define SL_ISOTIME_H

#include <stdint.h>

/* SL_OK, or SL_EINVAL for anything else (and for times before 1970). */
int sl_time_parse_iso8601(const char *s, uint64_t *ms_out);

#endif
