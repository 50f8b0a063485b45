/* isotime.c - ISO 8601 times to milliseconds since the epoch and back (see
 * isotime.h). Pure: no allocation, no global state. */
#include "common/isotime.h"

#include "common/assert.h"
#include "common/error.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* Parses exactly `n` decimal digits at *p, advancing it. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) {
            return 0;
        }
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* Parses "Z", "+HH:MM", "+HHMM", "+HH" (or "-...") or "" at p into seconds east of UTC. */
static int parse_offset(const char *p, int *offset_s)
{
    *offset_s = 0;
    if (*p == '\0' || ((*p == 'Z' || *p == 'z') && p[1] == '\0')) {
        return 1;
    }
    if (*p != '+' && *p != '-') {
        return 0;
    }
    int sign = *p == '-' ? -1 : 1;
    p++;
    int hh = 0, mm = 0;
    if (!digits(&p, 2, &hh)) {
        return 0;
    }
    if (*p == ':') {
        p++;
    }
    if (*p != '\0' && !digits(&p, 2, &mm)) {
        return 0;
    }
    if (*p != '\0' || hh > 23 || mm > 59) {
        return 0;
    }
    *offset_s = sign * (hh * 3600 + mm * 60);
    return 1;
}

int sl_time_parse_iso8601(const char *s, uint64_t *ms_out)
{
    const char *p = s;
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, ms = 0;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d)) {
        return SL_EINVAL;
    }
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi)) {
            return SL_EINVAL;
        }
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &sec)) {
                return SL_EINVAL;
            }
            if (*p == '.' || *p == ',') {
                p++;
                int scale = 100, any = 0;
                while (isdigit((unsigned char)*p)) {
                    ms += (*p - '0') * scale;
                    scale /= 10;
                    any = 1;
                    p++;
                }
                if (!any) {
                    return SL_EINVAL;
                }
            }
        }
    }
    int off = 0;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60 ||
        !parse_offset(p, &off)) {
        return SL_EINVAL;
    }
    int64_t t =
        days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec - off;
    if (t < 0) {
        return SL_EINVAL;
    }
    *ms_out = (uint64_t)t * 1000u + (uint64_t)ms;
    return SL_OK;
}

size_t sl_time_format_iso8601(uint64_t ms, bool with_ms, char out[SL_ISOTIME_FORMAT_MAX])
{
    time_t secs = (time_t)(ms / 1000); /* < 2^55: the year fits an int */
    struct tm tm;
    struct tm *ok = gmtime_r(&secs, &tm);
    SL_ASSERT(ok != NULL);
    size_t n = strftime(out, SL_ISOTIME_FORMAT_MAX, "%Y-%m-%dT%H:%M:%S", &tm);
    SL_ASSERT(n > 0);
    int k = with_ms ? snprintf(out + n, SL_ISOTIME_FORMAT_MAX - n, ".%03uZ", (unsigned)(ms % 1000))
                    : snprintf(out + n, SL_ISOTIME_FORMAT_MAX - n, "Z");
    SL_ASSERT(k > 0 && n + (size_t)k < SL_ISOTIME_FORMAT_MAX);
    return n + (size_t)k;
}
