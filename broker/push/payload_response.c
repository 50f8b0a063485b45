/* payload_response.c - Lambda's partial batch response read back
 * (sl_push_response_failures, payload.h).
 *
 * The body is untrusted: a remote handler's answer. json_loadb reads
 * exactly `len` bytes, with NULs inside strings allowed so that an
 * identifier holding one is compared whole and cannot match a shorter id;
 * jansson bounds the nesting. Identifiers are looked up in a sorted index of
 * the batch's ids (sl_push_record_id, the very function that rendered
 * them): O((n + m) log n) for m identifiers, whatever the answer holds.
 *
 * Lambda's rules decide: an empty body, one that is not JSON or not an
 * object with a "batchItemFailures" array, and an empty list, are success;
 * an entry whose itemIdentifier is missing (or that is not an object),
 * null, empty, not a string, or names no record of the batch fails the
 * whole batch (the answer cannot be trusted). An identifier naming several
 * records (Kinesis seqs of two shards in one batch) fails them all:
 * redelivery is safe, acknowledging a failure is not. For the same reason
 * running out of memory fails the whole batch (SL_ENOMEM).
 *
 * Threading: pure; any thread. Memory: the parsed body and the index.
 */
#include "broker/push/payload.h"

#include "common/assert.h"
#include "common/error.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct id_ref {
    char id[SL_PUSH_ID_MAX];
    uint32_t index;
};

static int id_cmp(const void *a, const void *b)
{
    const struct id_ref *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

/* The first entry of ids (sorted, n) whose id is the len bytes at s; n when none. */
static uint32_t id_find(const struct id_ref *ids, uint32_t n, const char *s, size_t len)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        size_t ml = strlen(ids[mid].id);
        int c = memcmp(ids[mid].id, s, ml < len ? ml : len);
        if (c < 0 || (c == 0 && ml < len)) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < n && strlen(ids[lo].id) == len && memcmp(ids[lo].id, s, len) == 0 ? lo : n;
}

static int fail_all(bool *failed, uint32_t n, uint32_t *nfailed, int rc)
{
    for (uint32_t i = 0; i < n; i++) {
        failed[i] = true;
    }
    *nfailed = n;
    return rc;
}

/* Marks the records the list names; false when an entry fails the whole batch. */
static bool mark(const json_t *list, const struct id_ref *ids, uint32_t n, bool *failed)
{
    size_t i;
    const json_t *e;
    json_array_foreach(list, i, e)
    {
        const json_t *id = json_object_get(e, "itemIdentifier"); /* NULL when e is no object */
        size_t len = json_string_length(id);
        uint32_t at = json_is_string(id) ? id_find(ids, n, json_string_value(id), len) : n;
        if (len == 0 || at == n) {
            return false;
        }
        for (; at < n && strlen(ids[at].id) == len &&
               memcmp(ids[at].id, json_string_value(id), len) == 0;
             at++) {
            failed[ids[at].index] = true;
        }
    }
    return true;
}

int sl_push_response_failures(enum sl_push_format f, const struct sl_push_source *src,
                              const struct sl_push_record *recs, uint32_t n, const char *body,
                              size_t len, bool *failed, uint32_t *nfailed)
{
    SL_ASSERT(src != NULL && src->stream != NULL && nfailed != NULL);
    SL_ASSERT((recs != NULL && failed != NULL) || n == 0);
    SL_ASSERT(body != NULL || len == 0);
    if (n > 0) {
        memset(failed, 0, n * sizeof(*failed));
    }
    *nfailed = 0;
    if (len == 0 || f == SL_PUSH_FORMAT_SNS_HTTP) {
        return SL_OK; /* SNS: any 2xx delivers; the body means nothing */
    }
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);
    if (root == NULL) {
        return json_error_code(&jerr) == json_error_out_of_memory
                   ? fail_all(failed, n, nfailed, SL_ENOMEM)
                   : SL_OK;
    }
    const json_t *list = json_object_get(root, "batchItemFailures");
    if (!json_is_array(list) || json_array_size(list) == 0) {
        json_decref(root);
        return SL_OK;
    }
    struct id_ref *ids = malloc((n > 0 ? n : 1) * sizeof(*ids));
    if (ids == NULL) {
        json_decref(root);
        return fail_all(failed, n, nfailed, SL_ENOMEM);
    }
    for (uint32_t i = 0; i < n; i++) {
        sl_push_record_id(f, src->stream, &recs[i], ids[i].id);
        ids[i].index = i;
    }
    qsort(ids, n, sizeof(*ids), id_cmp);
    bool ok = mark(list, ids, n, failed);
    free(ids);
    json_decref(root);
    if (!ok) {
        return fail_all(failed, n, nfailed, SL_EINVAL);
    }
    for (uint32_t i = 0; i < n; i++) {
        *nfailed += failed[i];
    }
    return SL_OK;
}
