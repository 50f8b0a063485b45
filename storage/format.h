/* format.h - the data directory's format version (<data>/FORMAT).
 *
 * One line, "sluice data format N\n", governs every file below it. A broker
 * reads formats 1 .. SL_DATA_FORMAT and refuses a newer one before opening
 * anything (so an older broker never mistakes newer files for damage and
 * "repairs" them); a directory without the file holds format 1 (written
 * before the file existed) or is new, and gets it. Files that carry their
 * own version (batches, checkpoint and queue-state snapshots, the queue-state
 * log) keep checking it too.
 *
 * Written durably: FORMAT.tmp, fsync, rename, fsync of the directory.
 */
#ifndef SL_STORAGE_FORMAT_H
#define SL_STORAGE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define SL_DATA_FORMAT     1u /* the newest format this build reads and writes */
#define SL_DATA_FORMAT_MIN 1u /* the oldest it still reads */

/* Checks (and creates when missing) the marker of `data_dir`; *found gets
 * the directory's format. Errors: SL_EUNSUPPORTED (a format this build
 * cannot read: `why` names both versions and the fix), SL_ECORRUPT (the
 * file is not a marker), SL_EIO/SL_ESYS (why names the file). */
int sl_data_format_check(const char *data_dir, uint32_t *found, char *why, size_t why_len);

#endif
