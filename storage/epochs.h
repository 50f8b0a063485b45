/* epochs.h - a replica's leader-epoch cache and its file, `leader-epochs`
 * (docs/REPLICATION.md "The epoch cache and its file", docs/FORMAT.md).
 *
 * The cache maps each leader epoch found in the shard's log to the first
 * sequence (offset) written in it, ascending, plus the highest epoch this
 * replica ever led. A leader answers "where did epoch E end?" from it; a
 * follower cuts its log where the leader says. The file sits next to the
 * shard's segments and is replaced durably (tmp, fsync, rename, directory
 * fsync); the batch headers carry the same epochs (bytes 24..28), so the
 * file is a summary of the log and is rebuilt from it when missing, behind
 * or damaged (sl_epochs_recover). Storage knows nothing of replication: the
 * broker's replica (broker/cluster/repl.h) copies these entries in and out;
 * SL_EPOCHS_MAX equals its SL_REPL_EPOCHS_MAX (checked in tests/unit).
 *
 * Threading: plain functions over caller-owned structs; the file calls
 * block (start-up, and a rare SAVE_EPOCHS: a new leader or a new epoch seen
 * by a follower).
 */
#ifndef SL_EPOCHS_H
#define SL_EPOCHS_H

#include <stddef.h>
#include <stdint.h>

struct sl_shard;

#define SL_EPOCHS_MAX         256u /* entries kept; the oldest goes first */
#define SL_EPOCHS_NONE        (-1) /* no epoch (last_led_epoch: never led) */
#define SL_EPOCHS_FILE        "leader-epochs"
#define SL_EPOCHS_FILE_TMP    "leader-epochs.tmp"
#define SL_EPOCHS_MAGIC       0x50454C53u /* "SLEP" as little-endian bytes */
#define SL_EPOCHS_VERSION     1u
#define SL_EPOCHS_HEAD_BYTES  16u /* magic, version, last_led_epoch, n */
#define SL_EPOCHS_ENTRY_BYTES 12u /* i32 epoch, i64 start_offset */
#define SL_EPOCHS_FILE_BYTES_MAX                                                                   \
    (SL_EPOCHS_HEAD_BYTES + SL_EPOCHS_MAX * SL_EPOCHS_ENTRY_BYTES + 8u) /* + XXH3-64 */

struct sl_epoch_entry {
    int32_t epoch;        /* >= 0; 0 = batches a single node wrote */
    int64_t start_offset; /* the first sequence written in `epoch` */
};

/* Invariants (sl_epochs_check): n <= SL_EPOCHS_MAX; epochs and starts both
 * strictly increasing (an epoch with no record is replaced by the next one
 * starting at the same offset); epochs >= 0, starts >= 0;
 * last_led_epoch >= SL_EPOCHS_NONE. */
struct sl_epochs {
    int32_t last_led_epoch;
    uint32_t n;
    struct sl_epoch_entry e[SL_EPOCHS_MAX];
};

/* An empty cache that never led. */
void sl_epochs_init(struct sl_epochs *c);

/* Asserts the invariants above (for values that did not come from disk). */
void sl_epochs_check(const struct sl_epochs *c);

/* Records that `epoch` starts at `start` (both not below the last entry's;
 * a caller bug otherwise: asserted). The same rule as the replica's cache:
 * an entry at the same start is replaced (its epoch has no record), a full
 * cache drops its oldest entry. A repeat of the last epoch is a no-op. */
void sl_epochs_add(struct sl_epochs *c, int32_t epoch, int64_t start);

/* Drops the entries starting at or after `end` (the log was cut there). */
void sl_epochs_truncate(struct sl_epochs *c, int64_t end);

/* The file's bytes: SL_EPOCHS_HEAD_BYTES + n x SL_EPOCHS_ENTRY_BYTES + 8
 * written to `buf` (cap >= that; SL_EPOCHS_FILE_BYTES_MAX always fits).
 * Returns the length. */
size_t sl_epochs_encode(const struct sl_epochs *c, uint8_t *buf, size_t cap);

/* Parses and checks a file's bytes: magic, version, exact length for its n,
 * n <= SL_EPOCHS_MAX, the checksum, every invariant above. Anything else is
 * refused, nothing of it served. Errors: SL_ECORRUPT (`why`: what is wrong),
 * SL_EUNSUPPORTED (a newer version: `why` names both). */
int sl_epochs_decode(const uint8_t *buf, size_t len, struct sl_epochs *out, char *why,
                     size_t why_len);

/* Writes `c` to <shard_dir>/leader-epochs durably (sl_file_replace). Errors:
 * SL_ENOSPC, SL_EIO, SL_EINVAL (logged with the step that failed). */
int sl_epochs_save(const char *shard_dir, const struct sl_epochs *c);

/* Reads <shard_dir>/leader-epochs. Errors: SL_ENOTFOUND (no file), those of
 * sl_epochs_decode (`why`), SL_EIO/SL_ESYS. */
int sl_epochs_load(const char *shard_dir, struct sl_epochs *out, char *why, size_t why_len);

/* What a replica does at start-up: the file, made to match the log.
 * Entries starting past the log's end are dropped (the log lost its tail
 * after the file was written), then the log's batch headers after the last
 * entry add what the file missed (sl_shard_scan_epochs; the file is saved
 * only at new epochs, so it may be behind). A missing, damaged or
 * inconsistent file (the log shows an epoch older than the file's last at
 * its start) is rebuilt from the headers of the whole retained log, with
 * last_led_epoch = `meta_epoch` (the shard's epoch in the metadata now:
 * the replica then never leads an epoch it might have led before; pass
 * SL_EPOCHS_NONE when unknown) - logged, never served as it was. The result
 * is not saved (the caller saves it when it next saves the cache). Errors:
 * SL_ECORRUPT (the log's own epochs decrease or exceed INT32_MAX: logged),
 * SL_EUNSUPPORTED (the file is of a newer version), SL_ENOMEM, read errors. */
int sl_epochs_recover(struct sl_shard *s, const char *shard_dir, int32_t meta_epoch,
                      struct sl_epochs *out);

#endif
