/* format.c - the data directory's format marker (see format.h). */
#include "storage/format.h"

#include "common/error.h"
#include "common/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MARKER_PREFIX "sluice data format "
#define MARKER_MAX    64u

static int write_marker(const char *data_dir, const char *path, char *why, size_t why_len)
{
    char tmp[4096 + 16], text[MARKER_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int len = snprintf(text, sizeof(text), MARKER_PREFIX "%u\n", SL_DATA_FORMAT);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 ? sl_err_from_errno(errno) : SL_OK;
    if (rc == SL_OK) {
        rc = sl_pwrite_full(fd, text, (size_t)len, 0);
    }
    if (rc == SL_OK) {
        rc = sl_fsync_fd(fd);
    }
    if (fd >= 0) {
        close(fd);
    }
    if (rc == SL_OK && rename(tmp, path) != 0) {
        rc = sl_err_from_errno(errno);
    }
    if (rc == SL_OK) {
        rc = sl_fsync_dir(data_dir);
    }
    if (rc != SL_OK) {
        snprintf(why, why_len, "cannot write %s: %s", path, sl_strerror(rc));
    }
    return rc;
}

int sl_data_format_check(const char *data_dir, uint32_t *found, char *why, size_t why_len)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/FORMAT", data_dir) >= sizeof(path)) {
        snprintf(why, why_len, "data directory path too long");
        return SL_EINVAL;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errno != ENOENT) {
            snprintf(why, why_len, "cannot read %s: %s", path, strerror(errno));
            return sl_err_from_errno(errno);
        }
        *found = 1; /* written before the marker existed, or new */
        return write_marker(data_dir, path, why, why_len);
    }
    char line[MARKER_MAX] = "";
    unsigned v = 0;
    char extra = 0;
    bool ok = fgets(line, sizeof(line), f) != NULL &&
              sscanf(line, MARKER_PREFIX "%u%c", &v, &extra) == 2 && extra == '\n' && v > 0;
    fclose(f);
    if (!ok) {
        snprintf(why, why_len,
                 "%s is not a Sluice format marker (want \"" MARKER_PREFIX
                 "N\"): restore it or the directory from a backup",
                 path);
        return SL_ECORRUPT;
    }
    *found = v;
    if (v > SL_DATA_FORMAT || v < SL_DATA_FORMAT_MIN) {
        snprintf(why, why_len, "%s holds data format %u; this sluiced reads formats %u to %u: %s",
                 data_dir, v, SL_DATA_FORMAT_MIN, SL_DATA_FORMAT,
                 v > SL_DATA_FORMAT ? "it was written by a newer sluiced; run that version (or "
                                      "newer), or restore a backup made before the upgrade"
                                    : "upgrade through an intermediate release");
        return SL_EUNSUPPORTED;
    }
    return SL_OK;
}
