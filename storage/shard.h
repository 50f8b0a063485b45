/* shard.h - one shard: an append-only, segmented, checksummed log.
 *
 * Threading: a shard belongs to the thread that owns its ring; every call
 * below is made on that thread, and every callback runs on it from
 * sl_ring_run(). Nothing here blocks the loop on data I/O: appends and reads
 * go through the ring. (Opening, rolling and deleting segment files do short
 * metadata syscalls on the loop, and a truncate - rare: a replica rejoining
 * - its unlinks, cuts and fsyncs; see docs/ARCHITECTURE.md.)
 *
 * Durability: see docs/FORMAT.md "Crash safety". An append's callback runs
 * with SL_OK only when the batch is durable (flush policy ALWAYS) or written
 * (INTERVAL); readers see exactly the batches whose callbacks have run.
 */
#ifndef SL_SHARD_H
#define SL_SHARD_H

#include "common/ring.h"

#include <stddef.h>
#include <stdint.h>

struct sl_batch_header;
struct sl_clock;
struct sl_shard;

/* The descriptor budget of the shards of one loop (one per worker thread; only
 * that thread touches it). A shard holds its directory, its writing segment's
 * .log and .idx and the sealed segments a read loaded; a quiescent shard (no
 * I/O in flight, nothing pending, its index written, its data synced) can be
 * parked: its descriptors closed, its index and buffers freed, everything else
 * kept. Shards are parked least recently used first while the loop holds more
 * than `files_max` (when a shard is used, and when one goes quiet: a burst over
 * many shards does not leave them open), and when opened; their next use
 * reopens them. Out of descriptors (EMFILE), the loop parks idle shards early
 * to free some. */
#define SL_SHARD_SPARE_BUFS 64u /* first-size staging buffers a budget keeps (64 KiB each) */

struct sl_shard_cache {
    uint64_t files_max;           /* 0: no limit (shards are never parked) */
    uint64_t files;               /* descriptors charged to the unparked shards */
    struct sl_shard *head, *tail; /* unparked shards, most recently used first */
    uint64_t parks;
    uint64_t unparks;
    /* Staging buffers of the first size that parked shards gave back, taken
     * by the next shards that take traffic: a churn of shards through the
     * budget does not fault fresh pages in for every reopen. */
    uint8_t *spare[SL_SHARD_SPARE_BUFS];
    uint32_t spare_len;
};

void sl_shard_cache_init(struct sl_shard_cache *c, uint64_t files_max);
/* Frees the spare buffers. The shards using the cache are closed first. */
void sl_shard_cache_fini(struct sl_shard_cache *c);

enum sl_flush_policy {
    SL_FLUSH_ALWAYS = 0,   /* ack after fdatasync (group commit) */
    SL_FLUSH_INTERVAL = 1, /* ack after write; fdatasync at least every interval_ms */
};

#define SL_RETENTION_MS_MAX (8760ull * 3600 * 1000) /* 365 days */
#define SL_PREZERO_MIN      (64ull << 10)              /* prezero_bytes, when not 0 */
#define SL_PREZERO_MAX      (1ull << 30)
#define SL_PREZERO_DEFAULT  (4ull << 20)               /* measured: README, issue 12 */

/* How the active segment's data is written (io_mode, README). */
enum sl_io_mode {
    SL_IO_BUFFERED = 0, /* write(2) through the page cache */
    SL_IO_DIRECT = 1,   /* O_DIRECT from aligned staging buffers (shard_direct.c) */
};
/* Offset, length and memory alignment of every O_DIRECT write: the largest
 * logical block size in use (4 KiB sectors), a multiple of 512. */
#define SL_DIO_ALIGN 4096u
#define SL_READ_CACHE_MIN     (64u << 10)
#define SL_READ_CACHE_MAX     (1u << 30)
#define SL_READ_CACHE_DEFAULT (1u << 20)

/* Checks that files in `dir` (which must exist) take O_DIRECT writes:
 * creates, writes, fdatasyncs and removes a probe file. SL_OK, or
 * SL_EUNSUPPORTED with the cause and the fix in `why` (tmpfs before Linux
 * 6.6 and some FUSE and network filesystems refuse O_DIRECT: EINVAL), or the
 * error of creating the file. Start-up only (blocking syscalls). */
int sl_shard_probe_direct(const char *dir, char *why, size_t why_len);

struct sl_shard_config {
    uint64_t segment_bytes;        /* roll when the next batch would pass this */
    uint64_t segment_age_ms;       /* roll when the active segment is this old (0 = never) */
    uint64_t retention_ms;         /* delete sealed segments older (1 .. SL_RETENTION_MS_MAX) */
    uint64_t retention_bytes;      /* delete oldest sealed segments while above (0 = no cap) */
    uint32_t index_interval_bytes; /* one index entry per this many log bytes */
    uint32_t write_buf_bytes;      /* size of one staging buffer */
    uint32_t write_bufs;           /* staging buffers per shard = max writes in flight + 1 */
    uint32_t pending_max;          /* appended batches not yet acknowledged */
    uint32_t batch_bytes_max;      /* largest batch accepted */
    uint32_t flush_interval_ms;    /* INTERVAL policy: fsync at least this often */
    uint32_t open_segments_max;    /* sealed segments kept open (fd + index) for reads */
    /* Zeroed run-ahead of the active segment's .log (0: none; else
     * SL_PREZERO_MIN .. SL_PREZERO_MAX): the file is kept this far beyond
     * the data with real zeros, written and fdatasynced a chunk at a time
     * off the append path, so a data fdatasync finds the file's size
     * already committed and does not commit it through the filesystem's
     * journal for every append (measured on ext4: see README, issue 12). A
     * segment starts it once it took one chunk of traffic, and none is
     * written while the shard's data fdatasyncs average over 128 KiB (big
     * group commits amortise the size commit); no zeros past segment_bytes.
     * A sealed, parked or closed segment has its zero tail cut; recovery
     * cuts it too (a zero tail is the clean end of the data). The file is at
     * most this much larger than its data. */
    uint64_t prezero_bytes;
    /* SL_IO_DIRECT: the writing segment's .log gets a second, O_DIRECT
     * descriptor; staged batches are written from SL_DIO_ALIGN-aligned
     * buffers over whole blocks (the block under the data end is written
     * again, with zeros past the data, by the next write), one data write in
     * flight per shard, zeros of the run-ahead through it too. Reads, the
     * fdatasyncs, the cuts and recovery use the buffered descriptor as
     * before: Linux keeps them coherent (docs/FORMAT.md "Direct I/O"). */
    enum sl_io_mode io_mode;
    /* SL_IO_DIRECT: the newest bytes of the writing segment, kept in memory
     * (a ring of this many bytes per shard taking traffic, allocated at its
     * first write, freed when it parks or closes): a read inside them - a
     * tailing consumer - is a copy, where the page cache no longer holds
     * what O_DIRECT wrote. Older data is read from the file (buffered).
     * 0 = none; else SL_READ_CACHE_MIN .. SL_READ_CACHE_MAX. Ignored when
     * buffered. */
    uint32_t read_cache_bytes;
    enum sl_flush_policy flush;
    struct sl_clock *clock; /* borrowed; NULL = the real clock */
    /* borrowed; NULL = no budget. Owned by the ring's thread; sl_shard_open
     * does not touch it (it may run on another thread): it leaves the shard
     * parked, and the first use on the ring's thread charges it. */
    struct sl_shard_cache *cache;
    /* The caller made every file of the shard durable after the last write
     * to it (one syncfs at start-up for all shards): recovery keeps what it
     * finds without an fdatasync of its own. Only while nothing has written
     * the shard since. */
    bool synced_before_open;
};

/* Fills `cfg` with the defaults (docs/ARCHITECTURE.md lists them). */
void sl_shard_config_default(struct sl_shard_config *cfg);

/* Checks ranges and relations; returns SL_EINVAL with a message in `why`. */
int sl_shard_config_check(const struct sl_shard_config *cfg, char *why, size_t why_len);

/* Opens (creating if missing) the shard in directory `dir` and recovers it:
 * sealed segments are trusted and not read; the active segment is scanned
 * from its last index entry, and a torn tail is truncated (and logged).
 * Synchronous; call at start-up. `ring` and `cfg->clock` are borrowed for the
 * shard's lifetime. Errors: SL_EINVAL, SL_ECORRUPT (sealed segments
 * inconsistent), SL_EIO, SL_ENOSPC, SL_ENOMEM, SL_ESYS. */
int sl_shard_open(struct sl_ring *ring, const char *dir, const struct sl_shard_config *cfg,
                  struct sl_shard **out);

/* Waits (running the ring) for every write, fsync and read in flight, makes
 * written data durable, and frees the shard. Pending appends complete first.
 * NULL-safe. */
void sl_shard_close(struct sl_shard *s);

/* Called when an appended batch is acknowledged (err == SL_OK) or failed. On
 * SL_OK, base_seq is the sequence of its first record. */
typedef void (*sl_append_cb)(void *ctx, int err, uint64_t base_seq, uint32_t count);

/* Appends one complete batch (`batch`, `len` bytes: borrowed for the call
 * only, it is copied). The batch is validated (checksums, limits) first; the
 * copy is stamped with its base sequence and append time. `cb` (may be NULL)
 * runs later from the loop, never from inside this call. Errors, returned
 * at once with no side effect: SL_ECORRUPT / SL_EPROTO (invalid batch),
 * SL_ETOOBIG, SL_EAGAIN (buffers or pending queue full: run the loop, retry),
 * SL_EFATAL (the shard refuses writes after an I/O error), SL_ENOSPC (the
 * disk was full at the last write; the next append tries again), SL_ELIMIT
 * (out of descriptors - EMFILE/ENFILE - reopening a parked shard or creating
 * the segment a roll needs, after parking idle shards of cfg.cache to free
 * some; the next append tries again). The callback may also report
 * SL_ENOSPC, SL_EFATAL, or SL_ELIMIT (the batch waited for a new segment
 * whose files could not be created: the shard stays writable, the sequence
 * rewinds to the batch, and the next append creates the files first). */
int sl_shard_append(struct sl_shard *s, const void *batch, size_t len, sl_append_cb cb, void *ctx);

/* Append flags: what the callback waits for. Default (0): the shard's flush
 * policy (ALWAYS: durable; INTERVAL: written). */
#define SL_APPEND_DURABLE 0x1u /* after an fdatasync covers the batch, whatever the policy */

/* sl_shard_append with flags. Appends are acknowledged in order, so a
 * durable one also holds back the ones after it until it is durable. */
int sl_shard_append_ex(struct sl_shard *s, const void *batch, size_t len, unsigned flags,
                       sl_append_cb cb, void *ctx);

/* Keep the batch's own stamps (base sequence, append time, leader epoch):
 * a follower storing what its leader appended, byte for byte. The batch's
 * base_seq must be the shard's next sequence and its append time no earlier
 * than the shard's last (the leader's log already obeys both), else
 * SL_EINVAL and nothing is stored. */
#define SL_APPEND_KEEP_STAMPS 0x2u

/* What an append carries besides the batch (sl_shard_append_opt). */
struct sl_append_opts {
    unsigned flags;        /* SL_APPEND_* */
    uint32_t leader_epoch; /* stamped into header bytes 24..28 (docs/FORMAT.md): the epoch
                            * the appending leader leads in; 0 on a single node. Ignored
                            * with SL_APPEND_KEEP_STAMPS (the batch keeps its own). */
};

/* sl_shard_append_ex with options (`o` borrowed for the call). The epoch is
 * written by the same stamp as the sequence: no cost per record or byte. */
int sl_shard_append_opt(struct sl_shard *s, const void *batch, size_t len,
                        const struct sl_append_opts *o, sl_append_cb cb, void *ctx);

/* Called once a truncate completed (err == SL_OK: the log now ends at
 * `end_seq`) or failed (the log is as it was, except with SL_EFATAL). */
typedef void (*sl_truncate_cb)(void *ctx, int err, uint64_t end_seq);

/* Cuts the log back so that it ends at `seq`: the batches from `seq` on are
 * gone, on disk and in memory, and the next append gets `seq`. `seq` must be
 * the first sequence of a batch or the log's end (a no-op). For a replica
 * whose tail diverges from its leader's (docs/REPLICATION.md); not on any
 * hot path. The work waits for the shard to be quiet (appends pending when
 * called complete first; appends made meanwhile are refused with SL_EAGAIN),
 * then runs on the loop with blocking syscalls (shard_truncate.c says why and
 * in which order; a crash leaves the log cut at a batch boundary at or after
 * `seq`, or as it was). `cb` (may be NULL) runs later from the loop, never
 * from inside this call. Reads beyond the new end then get SL_EINVAL.
 * Errors returned at once: SL_EINVAL (`seq` past the end), SL_ETRIMMED
 * (`seq` below the oldest retained sequence), SL_EAGAIN (a truncate is
 * already running), SL_EFATAL, SL_ECLOSED. Errors through `cb`: SL_EINVAL
 * (`seq` is inside a batch: logged with the batch's range), SL_ETRIMMED,
 * SL_ECORRUPT (a batch header on the way does not check), SL_EIO/SL_ESYS
 * (nothing was cut), SL_EFATAL (a file was already changed when a syscall
 * failed: the shard refuses writes, a restart recovers), SL_ECLOSED, and
 * SL_ELIMIT/SL_ENOMEM (reopening a parked shard). */
int sl_shard_truncate(struct sl_shard *s, uint64_t seq, sl_truncate_cb cb, void *ctx);

/* Empties the log and starts it at `seq`: every segment goes, the next append
 * gets `seq`, reads below it get SL_ETRIMMED (first_seq = `seq`). For a
 * replica whose log ends below its leader's oldest retained sequence
 * (docs/REPLICATION.md): it copies the leader's log from there (`seq` >= its
 * end); and for a replica removed from its shard, whose copy goes (`seq` = 0,
 * below its end: the log as a shard that never held a record). Runs as a
 * truncate does (waits for quiet, blocking syscalls on the loop, `cb` with the
 * new end = `seq`); durable when `cb` runs with SL_OK, and a crash at any
 * point leaves either the old log or the empty one at `seq` (shard_truncate.c
 * says how). Errors returned at once: SL_EINVAL (`seq` past
 * SL_SHARD_RESET_SEQ_MAX), SL_EAGAIN (a truncate or reset is running),
 * SL_EFATAL, SL_ECLOSED. Errors through `cb`: SL_EIO/SL_ESYS (nothing
 * changed), SL_EFATAL (a step after the commit failed: the shard refuses
 * writes, a restart finishes the reset), SL_ECLOSED, SL_ELIMIT/SL_ENOMEM. */
#define SL_SHARD_RESET_SEQ_MAX (UINT64_MAX / 2) /* far from the marker's UINT64_MAX "none" */
int sl_shard_reset(struct sl_shard *s, uint64_t seq, sl_truncate_cb cb, void *ctx);
/* Tests only (crash tests): the process kills itself (SIGKILL) once the
 * truncates (and resets) of `s` have done this many steps (each unlink, ftruncate and
 * fsync of the cut, in the order shard_truncate.c gives); 0 disarms. */
void sl_shard_truncate_test_kill_after(struct sl_shard *s, uint32_t steps);

/* Called (from the loop) after newly acknowledged batches became visible to
 * readers: the broker wakes its long-polling fetches here. */
typedef void (*sl_shard_listener)(void *ctx, struct sl_shard *s);
void sl_shard_set_listener(struct sl_shard *s, sl_shard_listener fn, void *ctx);
/* Called (from the loop) when batches not yet durable were written to the file: an
 * unsynced read (sl_shard_read.unsynced) now finds them. A replicated leader serves them to
 * its followers, whose fdatasyncs then run alongside its own. NULL: none (the default). */
void sl_shard_set_written_listener(struct sl_shard *s, sl_shard_listener fn, void *ctx);
/* The end of what is in the file (>= visible_seq, <= next_seq): where an unsynced read stops. */
uint64_t sl_shard_written_seq(const struct sl_shard *s);

enum sl_read_from {
    SL_READ_SEQ = 0,  /* the batch containing `seq` and the ones after */
    SL_READ_TIME = 1, /* the first batch appended at or after `time_ms` */
};

struct sl_shard_read;
typedef void (*sl_read_cb)(struct sl_shard_read *rd, int err);

/* A read request, owned by the caller and borrowed by the shard from
 * sl_shard_read() until `cb` runs. Results are whole, verified batches. */
struct sl_shard_read {
    /* in */
    enum sl_read_from from;
    uint64_t seq;
    uint64_t time_ms;
    uint8_t *buf;       /* borrowed; receives the batches */
    uint32_t buf_cap;   /* >= the largest batch, or SL_ETOOBIG */
    uint32_t max_bytes; /* soft limit on the result (the first batch always fits) */
    sl_read_cb cb;
    void *ctx;
    /* cb may run inside sl_shard_read when memory serves the read at once (the
     * page cache, or the recent-data cache): a long-poll woken by an append
     * then answers within the append's own acknowledgement (process_acks). */
    bool inline_ok;
    /* Also batches written but not yet acknowledged (up to written_seq, not
     * visible_seq): they may still be lost to a crash or cut by a full disk's
     * rewind, so only a reader that tolerates that asks (a replicated leader
     * serving its followers, whose epochs settle what a crash lost). */
    bool unsynced;
    /* out (valid in cb) */
    uint32_t len; /* bytes of whole batches at buf[0, len) */
    uint32_t batch_count;
    uint64_t next_seq;   /* sequence after the last returned batch (or the tail) */
    uint64_t first_seq;  /* on SL_ETRIMMED: the oldest retained sequence */
    uint32_t need_bytes; /* on SL_ETOOBIG: the buffer size needed */
    /* private */
    struct sl_shard *shard_;
    void *seg_;
    uint64_t pos_;
    struct sl_io_op op_;
    struct sl_deferred defer_;
    int err_;
    uint32_t want_;    /* bytes asked of the read in flight */
    uint32_t retries_; /* bytes already read by earlier short reads */
};

/* Starts a read. Results come only through `cb` (never called from inside
 * this function, unless rd->inline_ok and memory served it). cb errors: SL_ETRIMMED (below the retained range; first_seq
 * set), SL_EINVAL (seq beyond the tail), SL_ETOOBIG (need_bytes set),
 * SL_ECORRUPT (a batch failed its checksum: nothing of it is served), SL_EIO.
 * A read at the tail returns SL_OK with len == 0 and next_seq == the tail. */
void sl_shard_read(struct sl_shard *s, struct sl_shard_read *rd);

/* Deletes sealed segments past the retention time or byte cap (reading the
 * shard's clock); the active segment is never deleted. A segment a read
 * holds stays readable until the read completes. At most
 * SL_RETAIN_DELETES_PER_RUN are deleted per call: when more are due, the
 * shard runs again by itself from a ring timeout (a year of hourly segments
 * expiring at once is spread over loop turns, not one stall). Returns the
 * number of segments deleted; unlink/fsync errors are logged and retried next
 * run. */
#define SL_RETAIN_DELETES_PER_RUN 16u
uint32_t sl_shard_retention_run(struct sl_shard *s);
/* Changes the retention limits (the next sl_shard_retention_run applies
 * them). retention_ms in 1 .. SL_RETENTION_MS_MAX. */
void sl_shard_set_retention(struct sl_shard *s, uint64_t retention_ms, uint64_t retention_bytes);
/* Retention never deletes a record at or past `seq` (a segment goes only once the next one
 * starts at or below it): a replicated shard's high watermark, so a record not yet on enough
 * replicas is never trimmed away, whatever the limits say (Kafka's log start <= HW).
 * SL_RETAIN_FLOOR_NONE (the default): no floor. */
#define SL_RETAIN_FLOOR_NONE UINT64_MAX
void sl_shard_set_retention_floor(struct sl_shard *s, uint64_t seq);

/* The append time of the index entry at or before `seq` (within one index
 * interval of the record's own time, never after it): cheap, no data read.
 * Errors: SL_ETRIMMED, SL_EINVAL (beyond the tail), SL_ENOTFOUND (empty). */
int sl_shard_time_near_seq(struct sl_shard *s, uint64_t seq, uint64_t *time_ms);

/* Calls fn for each batch appended at or after `since_ms` among the newest
 * `bytes` of the log (from a batch boundary at most one index interval
 * further back), oldest first: headers only (checked by sl_batch_peek, the
 * bodies not read). Stops quietly at a damaged header (readers report
 * damage). Synchronous preads with descriptors of its own - the shard's and
 * its budget are untouched - so it may run on the thread that opened the
 * shard before the shard's first use, or on the ring's thread. Cheap when
 * the newest batch is older than `since_ms`: nothing is read. For start-up
 * rebuilds of recent history (the producers' de-dup tables). Errors:
 * SL_ENOMEM, and those of opening and reading the files. */
typedef void (*sl_shard_scan_fn)(void *ctx, const struct sl_batch_header *h);
int sl_shard_scan_recent(struct sl_shard *s, uint64_t since_ms, uint64_t bytes,
                         sl_shard_scan_fn fn, void *ctx);

/* The leader epochs along the log from `from_seq` on (the headers' bytes
 * 24..28, docs/FORMAT.md): fn(epoch, start) for the first visible batch at
 * or after `from_seq` (start: max(from_seq, its first sequence)) and for
 * every later batch whose epoch differs from the one before it (start: its
 * first sequence), oldest first; a non-zero return from fn stops the scan
 * and is returned. What a replica rebuilds its epoch cache from when the
 * `leader-epochs` file is missing or behind (storage/epochs.h). Relies on
 * epochs never decreasing along a log: a segment whose first and last
 * batches carry the epoch already current is skipped on those two headers,
 * so the cost is two header reads per segment plus a header walk of the
 * segments where an epoch begins. Synchronous, with descriptors of its own
 * (as sl_shard_scan_recent: start-up, before or on the ring's thread).
 * Stops quietly at a damaged header (readers report damage). Errors: those
 * of fn, SL_ENOMEM, and those of opening and reading the files. */
typedef int (*sl_shard_epoch_fn)(void *ctx, uint32_t epoch, uint64_t start_seq);
int sl_shard_scan_epochs(struct sl_shard *s, uint64_t from_seq, sl_shard_epoch_fn fn, void *ctx);

struct sl_shard_stats {
    uint64_t first_seq;       /* oldest retained */
    uint64_t next_seq;        /* sequence the next record will get */
    uint64_t visible_seq;     /* readers see [first_seq, visible_seq) */
    uint64_t visible_time_ms; /* append time of the newest visible batch (0: none) */
    uint64_t bytes;           /* retained bytes on disk (log files) */
    uint32_t segments;
    uint32_t segments_open;       /* sealed segments with fd/index loaded */
    uint64_t recovery_read_bytes; /* log bytes read by the last open */
    uint64_t recovery_truncated_bytes;
    uint64_t writes;        /* write ops issued */
    uint64_t fsyncs;        /* data fdatasync ops issued (directory fsyncs not counted) */
    uint64_t fsync_ns;      /* their total duration (completed ones), monotonic clock */
    uint64_t writebacks;    /* INTERVAL: early writeback starts (sync_file_range) issued */
    uint64_t zero_writes;   /* run-ahead: zero writes issued (prezero_bytes) */
    uint64_t zero_bytes;    /* ... and the bytes of zeros they wrote */
    uint64_t zero_misses;   /* data writes that grew the file (past the zeroed run-ahead) */
    /* reads served without a ring op: io_mode direct from the recent-data cache
     * (read_cache_bytes); buffered, small ones the page cache served at once (RWF_NOWAIT).
     * One counter for both (a shard has one mode): the stats are copied twice per shard
     * by the workers, which an idle shard's 512-byte bound counts. */
    uint64_t cache_reads;
    int state;              /* SL_OK, SL_ENOSPC, or SL_EFATAL */
    int fatal_errno;        /* with SL_EFATAL: the errno that caused it */
    const char *fatal_what; /* with SL_EFATAL: what failed ("fdatasync", ...) */
};

void sl_shard_stats(const struct sl_shard *s, struct sl_shard_stats *st);
/* Updates only the fields that change with every append or read (the
 * sequences, visible time, state): O(1), where sl_shard_stats walks the
 * segment list for `bytes`. */
void sl_shard_stats_progress(const struct sl_shard *s, struct sl_shard_stats *st);

/* The I/O whose completion is acknowledging appends (CLOCK_MONOTONIC ns; 0 = none yet): the
 * last completed data write's submission (the end-of-tick flush that made it a ring write)
 * and completion, and the last completed fdatasync's. Meaningful inside an append callback,
 * where it names the I/O that made that append acknowledged (a durable append: the sync
 * fields; else the write fields). For diagnostics (Produce.trace, docs/PROTOCOL.md):
 * three clock reads per write or fsync, none per record. */
struct sl_shard_io_times {
    uint64_t write_submit_ns;
    uint64_t write_done_ns;
    uint64_t sync_submit_ns;
    uint64_t sync_done_ns;
};
void sl_shard_io_times(const struct sl_shard *s, struct sl_shard_io_times *out);

#endif
