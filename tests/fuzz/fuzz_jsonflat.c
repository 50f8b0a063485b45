/* fuzz_jsonflat.c - the JSON reader of body patterns (common/jsonflat.c),
 * checked against jansson on the same bytes.
 *
 * Input: a document. Checks: a document jansson accepts as an object no
 * deeper than SL_JSONFLAT_DEPTH_MAX is accepted too, with the same number of
 * scalar values (arrays spread), and every top-level key jansson sees is
 * found; a document jansson refuses is refused too unless it holds what
 * jansson alone forbids (bytes >= 0x80, which jansson checks as UTF-8, a
 * \u0000 escape, or a number too large for a double, which we read as valid
 * JSON that equals no number). Duplicate keys keep every value here. Inputs
 * with a raw NUL byte are only loaded (jansson stops at it). Each load is done twice on one reader (the second must
 * agree), after a large document, so stale paths of an earlier load never
 * leak into a later one.
 */
#include "fuzz_util.h"

#include "common/assert.h"
#include "common/error.h"
#include "common/jsonflat.h"

#include <jansson.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sl_jsonflat *g_jf;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_jf = sl_jsonflat_new();
    SL_ASSERT(g_jf != NULL);
    return 0;
}

/* Scalars under `v`, arrays spread; -1 when deeper than the reader allows. */
static long scalars(const json_t *v, unsigned depth)
{
    if (json_is_object(v) || json_is_array(v)) {
        if (depth >= SL_JSONFLAT_DEPTH_MAX) {
            return -1;
        }
        long n = 0;
        size_t i;
        const char *k;
        json_t *c;
        if (json_is_object(v)) {
            json_object_foreach((json_t *)v, k, c)
            {
                long m = scalars(c, depth + 1);
                if (m < 0) {
                    return -1;
                }
                n += m;
            }
        } else {
            json_array_foreach(v, i, c)
            {
                long m = scalars(c, depth + 1);
                if (m < 0) {
                    return -1;
                }
                n += m;
            }
        }
        return n;
    }
    return 1;
}

static bool jansson_only_refuses(const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (d[i] >= 0x80) {
            return true;
        }
    }
    return memmem(d, n, "\\u0000", 6) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The document in an exact-size buffer: the reader must not read past it. */
    char *doc = malloc(size > 0 ? size : 1);
    SL_ASSERT(doc != NULL);
    memcpy(doc, data, size);
    int rc = sl_jsonflat_load(g_jf, doc, size);
    SL_ASSERT(rc == SL_OK || rc == SL_EINVAL || rc == SL_ETOOBIG || rc == SL_ENOMEM);
    uint32_t count = sl_jsonflat_count(g_jf);
    SL_ASSERT(rc == SL_OK || count == 0);
    SL_ASSERT(sl_jsonflat_load(g_jf, doc, size) == rc && sl_jsonflat_count(g_jf) == count);

    json_error_t err;
    json_t *root = NULL;
    if (memchr(data, 0, size) != NULL) { /* jansson reads a raw NUL oddly: no reference */
        free(doc);
        return 0;
    }
    root = json_loadb(doc, size, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &err);
    bool dup = false;
    if (root == NULL && strstr(err.text, "duplicate") != NULL) {
        root = json_loadb(doc, size, JSON_DECODE_INT_AS_REAL, &err); /* we keep every copy */
        dup = true;
    }
    if (root != NULL && json_is_object(root) && size <= SL_JSONFLAT_DOC_MAX) {
        long want = scalars(root, 1);
        if (want >= 0) {
            SL_ASSERT(rc == SL_OK);
            SL_ASSERT(dup || (long)count == want);
            const char *k;
            json_t *c;
            json_object_foreach(root, k, c)
            {
                SL_ASSERT(sl_jsonflat_child(g_jf, SL_JSONFLAT_ROOT, k, (uint32_t)strlen(k)) !=
                          SL_JSONFLAT_NONE);
            }
        } else {
            SL_ASSERT(rc == SL_EINVAL); /* too deep */
        }
    } else if (root == NULL && !jansson_only_refuses(data, size) &&
               strstr(err.text, "overflow") == NULL) {
        SL_ASSERT(rc != SL_OK);
    }
    json_decref(root);
    free(doc);
    /* Values found must be well formed. */
    for (uint32_t i = 0; rc == SL_OK && i < sl_jsonflat_count(g_jf); i++) {
        const struct sl_jsonflat_value *v = sl_jsonflat_value(g_jf, i);
        SL_ASSERT(v->type <= SL_JSON_NULL);
        SL_ASSERT(v->next == SL_JSONFLAT_NONE || v->next > i);
    }
    return 0;
}
