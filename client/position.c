/* position.c - parsing of consumer start positions and ISO 8601 times (pure functions).
 *
 * Used by the CLI's --from and by applications taking positions from configuration.
 * No allocation, no global state: thread-safe. Depends only on common/error.h and
 * common/isotime.h, so the unit test (tests/unit/test_client.c) compiles it directly.
 */
#include "client/sluice.h"
#include "common/error.h"
#include "common/isotime.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int sluice_time_parse_iso8601(const char *s, uint64_t *ms_out)
{
    return sl_time_parse_iso8601(s, ms_out);
}

/* Parses a whole unsigned decimal number. */
static int parse_u64(const char *s, uint64_t *out)
{
    if (!isdigit((unsigned char)*s)) {
        return SL_EINVAL;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return SL_EINVAL;
    }
    *out = v;
    return SL_OK;
}

int sluice_position_parse(const char *s, struct sluice_position *out)
{
    struct sluice_position p = {0};
    int rc = SL_OK;
    if (strcmp(s, "oldest") == 0 || strcmp(s, "trim_horizon") == 0) {
        p.kind = SLUICE_TRIM_HORIZON;
    } else if (strcmp(s, "latest") == 0) {
        p.kind = SLUICE_LATEST;
    } else if (strncmp(s, "seq:", 4) == 0) {
        p.kind = SLUICE_AT_SEQUENCE;
        rc = parse_u64(s + 4, &p.seq);
    } else if (strncmp(s, "after:", 6) == 0) {
        p.kind = SLUICE_AFTER_SEQUENCE;
        rc = parse_u64(s + 6, &p.seq);
    } else if (strncmp(s, "time:", 5) == 0) {
        p.kind = SLUICE_AT_TIMESTAMP;
        /* All digits: Unix milliseconds; otherwise an ISO 8601 date-time. */
        if (parse_u64(s + 5, &p.time_ms) != SL_OK) {
            rc = sluice_time_parse_iso8601(s + 5, &p.time_ms);
        }
    } else {
        rc = SL_EINVAL;
    }
    if (rc == SL_OK) {
        *out = p;
    }
    return rc;
}
