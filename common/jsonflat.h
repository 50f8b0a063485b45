/* jsonflat.h - a JSON object read once into the scalar values found at each
 * field path, for matching many patterns against one document.
 *
 * Paths are chains of object keys from the top; arrays add no step, so
 * {"items": [{"sku": "a"}, {"sku": "b"}]} holds two values at items.sku, in
 * document order. Only scalars (string, number, true, false, null) are values:
 * an empty array or object leaves no value behind, and a path that ends at
 * an object holds none either. A key repeated in one object adds its values
 * to the same path.
 *
 * Cost: one pass over the text; no allocation once the scratch has grown to
 * the largest document loaded (it grows geometrically, bounded by
 * SL_JSONFLAT_DOC_MAX). Strings without escapes point into the document;
 * escaped ones are decoded into the scratch.
 *
 * Ownership: a loaded document is borrowed until the next load or free.
 * Threading: one owner; nothing is shared.
 */
#ifndef SL_JSONFLAT_H
#define SL_JSONFLAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_JSONFLAT_DOC_MAX   (256u << 10) /* bytes of a document (EventBridge's event limit) */
#define SL_JSONFLAT_DEPTH_MAX 64u          /* objects and arrays open at once */
#define SL_JSONFLAT_NONE      UINT32_MAX
#define SL_JSONFLAT_ROOT      0u /* the path of the top-level object */

enum sl_json_type {
    SL_JSON_STRING,
    SL_JSON_NUMBER,
    SL_JSON_TRUE,
    SL_JSON_FALSE,
    SL_JSON_NULL,
};

struct sl_jsonflat_value {
    uint8_t type;  /* enum sl_json_type */
    bool num_ok;   /* SL_JSON_NUMBER and finite as a double */
    uint32_t len;  /* string bytes (decoded) */
    uint32_t next; /* the next value at the same path, or SL_JSONFLAT_NONE */
    const char *s; /* SL_JSON_STRING: decoded bytes, not NUL-terminated */
    double num;    /* SL_JSON_NUMBER when num_ok */
};

struct sl_jsonflat;

/* NULL when out of memory. The scratch starts empty and grows on load. */
struct sl_jsonflat *sl_jsonflat_new(void);
void sl_jsonflat_free(struct sl_jsonflat *jf);

/* Reads `doc` (borrowed until the next load, `len` bytes). Errors: SL_EINVAL
 * (not JSON, or the top level is not an object, or deeper than
 * SL_JSONFLAT_DEPTH_MAX), SL_ETOOBIG (longer than SL_JSONFLAT_DOC_MAX),
 * SL_ENOMEM. After an error the flattener holds no document: every lookup
 * finds nothing. */
int sl_jsonflat_load(struct sl_jsonflat *jf, const char *doc, size_t len);

/* The path one key below `path` (SL_JSONFLAT_ROOT for a top-level key), or
 * SL_JSONFLAT_NONE when the document has no such key there. */
uint32_t sl_jsonflat_child(const struct sl_jsonflat *jf, uint32_t path, const char *key,
                           uint32_t key_len);

/* The first value at `path` (SL_JSONFLAT_NONE for none); follow `next`. */
uint32_t sl_jsonflat_first(const struct sl_jsonflat *jf, uint32_t path);
const struct sl_jsonflat_value *sl_jsonflat_value(const struct sl_jsonflat *jf, uint32_t idx);

/* Values in the loaded document (0 after a failed load). */
uint32_t sl_jsonflat_count(const struct sl_jsonflat *jf);

#endif
