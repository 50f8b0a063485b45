/* transform.h - a push target's body transform: what EventBridge calls a
 * target's input (Input, InputPath, InputTransformer), applied to the event
 * a target would receive.
 *
 * The spec is JSON text (at most SL_PUSH_TRANSFORM_SPEC_MAX bytes), one of:
 *   {"Input": "<JSON text>"}                  a constant, sent as is
 *   {"InputPath": "$.detail.x"}               the part of the event at the path
 *   {"InputTransformer": {"InputPathsMap": {"var": "$.path", ...},
 *                         "InputTemplate": "text with <var>"}}
 * plus, optionally, "RuleName" and "RuleArn" for <aws.events.rule-name> and
 * <aws.events.rule-arn>. Paths: "$", then .name, ['name'] or [index] steps
 * (at most SL_PUSH_TRANSFORM_PATH_MAX).
 *
 * Template substitution follows EventBridge: a template that starts with
 * '{', '[' or '"' is JSON: a <var> inside a JSON string gets a string value's
 * text (JSON-escaped, no quotes), outside one a JSON value (a string with
 * its quotes); a template that is not JSON gets string values' raw text.
 * Objects, arrays, numbers, booleans and null come as JSON text everywhere; a
 * path that matches nothing gives null (inside a string: nothing).
 * Predefined: <aws.events.event> (the event without "detail"),
 * <aws.events.event.json> (the whole event), <aws.events.rule-name>,
 * <aws.events.rule-arn>, <aws.events.event.ingestion-time> (ISO 8601). A
 * <name> that names no variable stays as written.
 *
 * Threading: a compiled transform is immutable (any thread may apply it).
 */
#ifndef SL_PUSH_TRANSFORM_H
#define SL_PUSH_TRANSFORM_H

#include <stddef.h>
#include <stdint.h>

#define SL_PUSH_TRANSFORM_SPEC_MAX 16384u      /* bytes of spec JSON */
#define SL_PUSH_TRANSFORM_OUT_MAX  (256u << 10) /* bytes of one output (EventBridge's event) */
#define SL_PUSH_TRANSFORM_VARS_MAX 100u         /* InputPathsMap entries (EventBridge) */
#define SL_PUSH_TRANSFORM_PATH_MAX 16u          /* steps of one path */

struct sl_push_transform;

/* Compiles `spec` (borrowed, len bytes). Errors: SL_EINVAL with `why`
 * naming the problem (the member, the variable, the path), SL_ETOOBIG,
 * SL_ENOMEM. *out is the caller's (sl_push_transform_free). */
int sl_push_transform_compile(const char *spec, size_t len, struct sl_push_transform **out,
                              char *why, size_t why_len);

/* Applies t to `event` (JSON text, len bytes; `ingestion_ms` its append
 * time): *out is malloc'd, NUL-terminated after *out_len bytes. Errors:
 * SL_EINVAL (the event is not a JSON object), SL_ETOOBIG (the output would
 * pass SL_PUSH_TRANSFORM_OUT_MAX), SL_ENOMEM. */
int sl_push_transform_apply(const struct sl_push_transform *t, const char *event, size_t len,
                            uint64_t ingestion_ms, char **out, size_t *out_len);

/* NULL is a no-op. */
void sl_push_transform_free(struct sl_push_transform *t);

#endif
