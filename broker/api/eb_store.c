/* eb_store.c - the EventBridge front-end's state file (eb_int.h).
 *
 * Format (<data>/eventbridge/state): a header line "SLEB <version> <length>
 * <XXH3-64 hex>\n", then <length> bytes of the state's JSON (compact). The
 * checksum covers the JSON; a file that fails it, or whose JSON is not the
 * expected document, is refused at load with the path and the fix (the
 * front-end then answers InternalException on every call rather than
 * serving an empty state that would forget rules).
 *
 * Writes are whole-file: tmp, fsync, rename, fsync dir; rules change rarely
 * (admin calls). Bounded: EB_STATE_BYTES_MAX.
 */
#include "broker/api/eb_int.h"

#include "common/checksum.h"
#include "common/error.h"
#include "common/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_VERSION  1u
#define STORE_FILE     "state"
#define STORE_TMP      "state.tmp"
#define STORE_HEAD_MAX 80u

static json_t *fresh(void)
{
    return json_pack("{s:i,s:i,s:{},s:{},s:{},s:{},s:[]}", "version", STORE_VERSION, "serial", 0,
                     "buses", "rules", "archives", "replays", "dead");
}

static bool shape_ok(const json_t *d)
{
    return json_is_object(d) && json_is_integer(json_object_get(d, "serial")) &&
           json_is_object(json_object_get(d, "buses")) &&
           json_is_object(json_object_get(d, "rules")) &&
           json_is_array(json_object_get(d, "dead"));
}

int eb_store_load(const char *dir, json_t **out, char *why, size_t why_len)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE);
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (errno != ENOENT) {
            snprintf(why, why_len, "%s: cannot open: %s", path, strerror(errno));
            return SL_EIO;
        }
        *out = fresh();
        return *out != NULL ? SL_OK : SL_ENOMEM;
    }
    char head[STORE_HEAD_MAX];
    unsigned version = 0;
    uint64_t len = 0, sum = 0;
    int rc = SL_ECORRUPT;
    char *buf = NULL;
    if (fgets(head, sizeof(head), f) != NULL &&
        sscanf(head, "SLEB %u %" SCNu64 " %" SCNx64, &version, &len, &sum) == 3 &&
        version == STORE_VERSION && len <= EB_STATE_BYTES_MAX) {
        buf = malloc(len + 1);
        if (buf == NULL) {
            rc = SL_ENOMEM;
        } else if (fread(buf, 1, len, f) == len && fgetc(f) == EOF &&
                   sl_checksum64(buf, len) == sum) {
            json_t *d = json_loadb(buf, len, 0, NULL);
            if (shape_ok(d)) {
                *out = d;
                rc = SL_OK;
            } else {
                json_decref(d);
            }
        }
    }
    fclose(f);
    free(buf);
    if (rc == SL_ECORRUPT) {
        snprintf(why, why_len,
                 "%s is damaged (header, length, checksum or JSON do not match version %u): "
                 "restore it from a backup, or remove it to start with no EventBridge buses "
                 "and rules",
                 path, STORE_VERSION);
    } else if (rc == SL_ENOMEM) {
        snprintf(why, why_len, "out of memory reading %s", path);
    }
    return rc;
}

int eb_store_save(const char *dir, const json_t *doc, char *why, size_t why_len)
{
    char tmp[4200], path[4200];
    snprintf(tmp, sizeof(tmp), "%s/%s", dir, STORE_TMP);
    snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE);
    char *body = json_dumps(doc, JSON_COMPACT);
    if (body == NULL) {
        snprintf(why, why_len, "out of memory writing %s", path);
        return SL_ENOMEM;
    }
    size_t len = strlen(body);
    if (len > EB_STATE_BYTES_MAX) {
        free(body);
        snprintf(why, why_len, "the EventBridge state would be %zu bytes, past %u: remove rules",
                 len, EB_STATE_BYTES_MAX);
        return SL_ETOOBIG;
    }
    char head[STORE_HEAD_MAX];
    int hlen = snprintf(head, sizeof(head), "SLEB %u %zu %016" PRIx64 "\n", STORE_VERSION, len,
                        sl_checksum64(body, len));
    const char *step;
    int rc = sl_file_replace(dir, tmp, path, (const void *const[]){head, body},
                             (const size_t[]){(size_t)hlen, len}, 2, &step);
    free(body);
    if (rc != SL_OK) {
        snprintf(why, why_len, "cannot %s %s: %s", step, path, sl_strerror(rc));
    }
    return rc;
}
