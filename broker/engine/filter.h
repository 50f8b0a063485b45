/* filter.h - event patterns (EventBridge style) over a record's attributes or
 * over its value read as a JSON object.
 *
 * A pattern is a JSON object: every key must match (AND); a key's array holds
 * alternatives (OR). With SL_FILTER_SCOPE_BODY a key's value may also be an
 * object, naming a nested field ({"detail": {"state": ["shipped"]}} looks at
 * detail.state). An alternative is a literal (string, number; null, true and
 * false in the body) or one operator object: prefix, suffix (each also as
 * {"equals-ignore-case": s}), equals-ignore-case, wildcard, cidr,
 * anything-but (a literal, a list, or {prefix|suffix|equals-ignore-case|
 * wildcard}), exists, numeric. "$or" holds sub-patterns, any of which may
 * match, at any level. `{}` matches every record. filter_parse.c and
 * filter_match.c state every rule.
 *
 * Cost: a pattern is compiled once. A record is wrapped in a subject; its
 * value is read as JSON at most once, however many filters are matched
 * against the subject, and only if one of them looks at the body.
 *
 * Threading: a parsed filter is immutable and may be matched on any number of
 * threads at once; a subject has one owner.
 */
#ifndef SL_FILTER_H
#define SL_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_record_view;
struct sl_filter;
struct sl_jsonflat;

enum sl_filter_scope {
    SL_FILTER_SCOPE_ATTRIBUTES = 0, /* keys name attributes; values are byte strings */
    SL_FILTER_SCOPE_BODY = 1,       /* keys name fields of the value's JSON object */
};

#define SL_FILTER_TEXT_MAX     4096u /* bytes of pattern JSON */
#define SL_FILTER_KEYS_MAX     64u   /* fields in the whole pattern, $or branches included */
#define SL_FILTER_VALUES_MAX   256u  /* elements of one array: alternatives, anything-but, $or */
#define SL_FILTER_OR_DEPTH_MAX 4u    /* $or inside $or inside ... */
#define SL_FILTER_PATH_MAX     16u   /* nested keys of one field (body scope) */

/* Parses the pattern `json` (borrowed, `len` bytes, no NUL needed) for
 * `scope`. On SL_OK *out is a filter the caller owns (sl_filter_free). On
 * error *out is NULL and `why` (borrowed, may be NULL) holds a message that
 * starts with the JSON path of the fault, e.g. "$.price[0]: numeric needs an
 * operator and a number"; syntax errors carry jansson's line and column.
 * Errors: SL_EINVAL (not JSON, not a valid pattern), SL_ETOOBIG (past one of
 * the SL_FILTER_*_MAX limits, or an attribute key longer than
 * SL_RECORD_ATTR_KEY_MAX), SL_ENOMEM. */
int sl_filter_parse(const char *json, size_t len, enum sl_filter_scope scope,
                    struct sl_filter **out, char *why, size_t why_len);

enum sl_filter_scope sl_filter_scope(const struct sl_filter *f);

/* A record being matched. Fields are private to filter_match.c. */
struct sl_filter_subject {
    const struct sl_record_view *rec; /* borrowed */
    struct sl_jsonflat *body;         /* owned scratch, made at the first body match */
    struct sl_jsonflat *array;        /* owned scratch: a String.Array attribute's elements */
    int8_t body_state;                /* -1 not read, 0 not a JSON object, 1 read */
};

/* An empty subject: no allocation until a body pattern is matched. */
void sl_filter_subject_init(struct sl_filter_subject *s);
void sl_filter_subject_fini(struct sl_filter_subject *s);

/* Points the subject at `rec` (borrowed until the next set). */
void sl_filter_subject_set(struct sl_filter_subject *s, const struct sl_record_view *rec);

/* True when the subject's record matches `f`. No allocation but the body
 * scratch's growth to the largest value seen; bounded by the pattern's size
 * and, for body patterns, one read of a value of at most SL_JSONFLAT_DOC_MAX
 * bytes. A value that is not a JSON object of that size (or no memory for it)
 * matches no body pattern but "{}". */
bool sl_filter_match(const struct sl_filter *f, struct sl_filter_subject *s);

/* Frees a filter (takes it); NULL is a no-op. */
void sl_filter_free(struct sl_filter *f);

#endif
