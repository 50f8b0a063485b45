/* filter.h - event patterns over a record's attributes (EventBridge style).
 *
 * A pattern is a JSON object: every key names an attribute and must match
 * (AND); its value is an array of alternatives (OR). An alternative is a
 * string (exact), a number (numeric equality), or one operator object:
 * prefix, suffix, anything-but, exists, numeric, equals-ignore-case. The key
 * "$or" holds an array of sub-patterns, any of which may match. `{}` matches
 * every record. filter.c states every rule.
 *
 * Threading: a parsed filter is immutable; sl_filter_match may run on any
 * number of threads at once on the same filter.
 */
#ifndef SL_FILTER_H
#define SL_FILTER_H

#include <stdbool.h>
#include <stddef.h>

struct sl_record_view;
struct sl_filter;

#define SL_FILTER_TEXT_MAX     4096u /* bytes of pattern JSON */
#define SL_FILTER_KEYS_MAX     64u  /* attribute keys in the whole pattern, $or branches included */
#define SL_FILTER_VALUES_MAX   256u /* elements of one array: alternatives, anything-but, $or */
#define SL_FILTER_OR_DEPTH_MAX 4u   /* $or inside $or inside ... */

/* Parses the pattern `json` (borrowed, `len` bytes, no NUL needed). On SL_OK
 * *out is a filter the caller owns (sl_filter_free). On error *out is NULL
 * and `why` (borrowed, may be NULL) holds a message that starts with the JSON
 * path of the fault, e.g. "$.price[0]: numeric needs an operator and a
 * number"; syntax errors carry jansson's line and column.
 * Errors: SL_EINVAL (not JSON, not a valid pattern), SL_ETOOBIG (past one of
 * the SL_FILTER_*_MAX limits, or an attribute key longer than
 * SL_RECORD_ATTR_KEY_MAX), SL_ENOMEM. */
int sl_filter_parse(const char *json, size_t len, struct sl_filter **out, char *why,
                    size_t why_len);

/* True when the attributes of `rec` (borrowed) match `f` (borrowed). No
 * allocation, no recursion; bounded by the pattern's size. */
bool sl_filter_match(const struct sl_filter *f, const struct sl_record_view *rec);

/* Frees a filter (takes it); NULL is a no-op. */
void sl_filter_free(struct sl_filter *f);

#endif
