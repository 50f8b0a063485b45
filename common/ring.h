/* ring.h - the io_uring loop wrapper (the only module that includes liburing.h).
 *
 * An operation (`struct sl_io_op`) is embedded in its owner, which finds itself
 * again with container_of; the ring's user_data points at the op. The buffer
 * handed to a write/read belongs to the io layer until the op's callback runs.
 * Callbacks run from sl_ring_run() on the thread that owns the ring; they may
 * queue new ops. One ring belongs to one thread.
 *
 * Results: the callback receives `res` exactly as the kernel reported it:
 * >= 0 (bytes transferred, or 0) on success, -errno on failure. This wrapper
 * is the only place that reads cqe->res. The one exception is an armed fault
 * (sl_ring_faults_arm, for tests): then a selected op reports the injected
 * result instead.
 */
#ifndef SL_RING_H
#define SL_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define sl_container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

struct sl_io_op;
typedef void (*sl_io_cb)(struct sl_io_op *op, int res);

struct sl_io_op {
    sl_io_cb cb;
};

/* Work deferred to the end of the current loop tick: runs once, right before
 * the ring next submits. Used for group writes: many appends in one tick
 * become one write. Embedded in its owner; queueing twice is a no-op. */
struct sl_deferred {
    void (*fn)(struct sl_deferred *d);
    struct sl_deferred *next;
    int queued;
};

struct sl_ring_impl; /* opaque: holds the struct io_uring */

struct sl_ring {
    struct sl_ring_impl *impl;
    uint32_t inflight; /* ops queued or submitted whose callback has not run */
    struct sl_deferred *deferred_head;
    struct sl_deferred **deferred_tail;
};

/* Checks that io_uring can be set up and supports every opcode Sluice uses.
 * On failure returns SL_EUNSUPPORTED and writes a message naming the cause and
 * the fix into `why` (e.g. kernel.io_uring_disabled, a seccomp profile). */
int sl_ring_probe(char *why, size_t why_len);

/* Sets up a ring with `entries` submission slots (power of two, <= 4096).
 * Errors: SL_EUNSUPPORTED, SL_ENOMEM, SL_ESYS. fini is safe after a failed
 * init and idempotent. */
int sl_ring_init(struct sl_ring *ring, uint32_t entries);
void sl_ring_fini(struct sl_ring *ring);

/* Queue one operation. They never fail: when the submission queue is full the
 * queued entries are submitted first. The op and its buffer are borrowed until
 * op->cb runs. Data writes are never linked to each other. */
void sl_ring_write(struct sl_ring *ring, struct sl_io_op *op, int fd, const void *buf,
                   uint32_t len, uint64_t offset);
void sl_ring_read(struct sl_ring *ring, struct sl_io_op *op, int fd, void *buf, uint32_t len,
                  uint64_t offset);
/* fdatasync (datasync = 1, IORING_FSYNC_DATASYNC) or fsync; works on dirs. */
void sl_ring_fsync(struct sl_ring *ring, struct sl_io_op *op, int fd, int datasync);
/* sync_file_range(SYNC_FILE_RANGE_WRITE): starts writeback of [offset,
 * offset + len) without waiting for it (an early start, so a later
 * fdatasync has less to do; it promises nothing itself). Not a fault point. */
void sl_ring_writeback(struct sl_ring *ring, struct sl_io_op *op, int fd, uint64_t offset,
                       uint32_t len);
/* Sockets: accept (res = new fd, SOCK_CLOEXEC), recv and send (res = bytes;
 * send uses MSG_NOSIGNAL). */
void sl_ring_accept(struct sl_ring *ring, struct sl_io_op *op, int fd);
void sl_ring_recv(struct sl_ring *ring, struct sl_io_op *op, int fd, void *buf, uint32_t len);
void sl_ring_send(struct sl_ring *ring, struct sl_io_op *op, int fd, const void *buf,
                  uint32_t len);
/* Asks the kernel to cancel `target` (its callback then runs with
 * -ECANCELED, or with its result if it already completed). `op` completes
 * when the cancel request is done. */
void sl_ring_cancel(struct sl_ring *ring, struct sl_io_op *op, struct sl_io_op *target);
/* Completes with -ETIME after `timeout_ns` (or earlier, if woken). */
void sl_ring_timeout(struct sl_ring *ring, struct sl_io_op *op, uint64_t timeout_ns);

/* Queues `d` to run before the next submit (FIFO). */
void sl_ring_defer(struct sl_ring *ring, struct sl_deferred *d);

/* Runs the deferred work, then submits queued ops, waits until at least `wait_nr` completions are ready or
 * `timeout_ns` passed (0 = do not wait), then runs every ready callback.
 * When deferred work ran, it does not wait (that work may have been what the
 * caller was waiting for).
 * Returns the number of callbacks run. */
int sl_ring_run(struct sl_ring *ring, uint32_t wait_nr, uint64_t timeout_ns);

/* ---- fault injection (tests) -------------------------------------------
 *
 * Always compiled in, inert until armed: an unarmed ring pays one predictable
 * branch per queued file write/fsync/read and one per reap. One fault plan per
 * ring (no globals); arming again replaces the plan and zeroes the counters.
 *
 * Selection: ops of kind `op` are counted as they are QUEUED after arming
 * (1-based); the nth is selected, and with `persistent` every one after it.
 * A selected op:
 *   err != 0 (EIO, ENOSPC, any errno): is NOT handed to the kernel, so the
 *     write/fsync/read does not happen; its callback runs with -err from the
 *     next sl_ring_run (never from inside the queueing call), like a fast
 *     kernel failure. For a failed fsync this is the harsher, realistic
 *     case: the data written before it may or may not be on disk.
 *   err == 0 (SL_FAULT_WRITE, SL_FAULT_READ only): a short transfer: the op
 *     goes to the kernel with len/2 bytes (len 1 stays 1), so the callback
 *     sees a real, partial result and the caller must resume.
 * Counted kinds: SL_FAULT_WRITE = sl_ring_write (data and index files),
 * SL_FAULT_FSYNC = sl_ring_fsync (files and directories), SL_FAULT_READ =
 * sl_ring_read. Sockets (send/recv/accept) are never selected. open(),
 * rename(), ftruncate() and the synchronous fsyncs in common/fileio.c (used
 * at open, recovery and compaction) are plain syscalls, not ring ops: this
 * hook cannot fail them. */
enum sl_ring_fault_op {
    SL_FAULT_WRITE = 1,
    SL_FAULT_FSYNC = 2,
    SL_FAULT_READ = 3,
};

struct sl_ring_faults {
    int op;          /* SL_FAULT_WRITE, SL_FAULT_FSYNC, SL_FAULT_READ */
    uint64_t nth;    /* fail the nth op of that kind counted from arming (1-based) */
    int err;         /* positive errno (EIO, ENOSPC), or 0: a short write/read */
    bool persistent; /* every op from the nth on */
};

struct sl_ring_fault_counts {
    uint64_t seen;     /* ops of the armed kind queued since arming */
    uint64_t injected; /* of them, selected (failed or shortened) */
};

/* `f` is copied. Asserts a valid plan (nth >= 1; err >= 0; err 0 only for
 * writes and reads). Ops already queued are not affected. */
void sl_ring_faults_arm(struct sl_ring *ring, const struct sl_ring_faults *f);
/* Stops selecting; injected failures already queued still complete, and the
 * counters stay readable. Idempotent. */
void sl_ring_faults_disarm(struct sl_ring *ring);
void sl_ring_faults_counts(const struct sl_ring *ring, struct sl_ring_fault_counts *out);
/* The armed plan into *out, and true; false when none is armed. */
bool sl_ring_faults_plan(const struct sl_ring *ring, struct sl_ring_faults *out);
/* Whether a plan for ops of kind `op` is armed: a caller with a synchronous
 * shortcut around such an op (storage's page-cache reads) takes the ring then,
 * so the injected failures still reach it. */
bool sl_ring_faults_armed(const struct sl_ring *ring, int op);

/* Runs the loop until `*done` becomes nonzero (set by a callback) or no op is
 * in flight. Returns SL_OK, or SL_EAGAIN if it stopped with nothing in flight
 * and *done still 0. For tests and tools that drive the loop directly. */
int sl_ring_run_until(struct sl_ring *ring, const int *done);

#endif
