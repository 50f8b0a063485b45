/* ring.c - io_uring loop wrapper on liburing 2.3.
 *
 * Threading: a ring and every op on it belong to one thread. Completions are
 * reaped one at a time and the CQ slot is released before the callback runs,
 * so callbacks may queue and submit new ops (re-entrancy safe).
 *
 * Fault injection (ring.h): a failed op selected by an armed plan never
 * reaches the kernel; it waits in `fake` (a FIFO bounded like the CQ) and
 * its callback runs at the start of the next reap. While one waits,
 * sl_ring_run does not block. A shortened op is a real op with len/2.
 */
#include "common/ring.h"

#include "common/assert.h"
#include "common/error.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A completion made up by the fault layer (the op was never submitted). */
struct fake_cqe {
    struct sl_io_op *op;
    int res;
};

struct sl_ring_impl {
    struct io_uring uring;
    bool armed;
    struct sl_ring_faults plan;
    struct sl_ring_fault_counts counts;
    struct fake_cqe *fake; /* FIFO of fake_cap, like the CQ (2 x entries) */
    uint32_t fake_cap;
    uint32_t fake_head;
    uint32_t fake_len;
};

/* Same hint as the kernel's unlikely(): the unarmed path stays straight. */
#define FAULT_ARMED(ring) __builtin_expect((ring)->impl->armed, 0)

/* The opcodes the storage engine and the broker use. */
static const struct {
    int op;
    const char *name;
} needed_ops[] = {
    {IORING_OP_WRITE, "WRITE"},   {IORING_OP_READ, "READ"},     {IORING_OP_FSYNC, "FSYNC"},
    {IORING_OP_TIMEOUT, "TIMEOUT"}, {IORING_OP_ACCEPT, "ACCEPT"}, {IORING_OP_RECV, "RECV"},
    {IORING_OP_SEND, "SEND"},     {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
};

static int read_sysctl_disabled(void)
{
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    if (f == NULL) {
        return -1;
    }
    int v = -1;
    if (fscanf(f, "%d", &v) != 1) {
        v = -1;
    }
    fclose(f);
    return v;
}

int sl_ring_probe(char *why, size_t why_len)
{
    struct io_uring uring;
    int rc = io_uring_queue_init(4, &uring, 0);
    if (rc < 0) {
        int disabled = read_sysctl_disabled();
        if (rc == -ENOSYS) {
            snprintf(why, why_len,
                     "io_uring is not available: this kernel lacks it (ENOSYS); "
                     "Sluice needs Linux >= 5.19 built with CONFIG_IO_URING=y");
        } else if (disabled > 0) {
            snprintf(why, why_len,
                     "io_uring is disabled by sysctl kernel.io_uring_disabled=%d; "
                     "fix: sysctl -w kernel.io_uring_disabled=0 (or add this user's "
                     "group to kernel.io_uring_group when the value is 1)",
                     disabled);
        } else if (rc == -EPERM) {
            snprintf(why, why_len,
                     "io_uring_setup was refused (EPERM), most likely by a container "
                     "seccomp profile; fix: allow io_uring_setup, io_uring_enter and "
                     "io_uring_register (e.g. docker run --security-opt "
                     "seccomp=deploy/seccomp.json) or run without the default profile");
        } else if (rc == -ENOMEM) {
            snprintf(why, why_len,
                     "io_uring_setup failed with ENOMEM: the locked-memory limit is "
                     "too low; fix: raise RLIMIT_MEMLOCK (ulimit -l, LimitMEMLOCK= "
                     "in systemd)");
        } else {
            snprintf(why, why_len, "io_uring_setup failed: %s", strerror(-rc));
        }
        return SL_EUNSUPPORTED;
    }
    struct io_uring_probe *probe = io_uring_get_probe_ring(&uring);
    int result = SL_OK;
    if (probe == NULL) {
        snprintf(why, why_len, "io_uring opcode probe failed; Sluice needs Linux >= 5.19");
        result = SL_EUNSUPPORTED;
    } else {
        for (size_t i = 0; i < sizeof(needed_ops) / sizeof(needed_ops[0]); i++) {
            if (!io_uring_opcode_supported(probe, needed_ops[i].op)) {
                snprintf(why, why_len,
                         "io_uring lacks opcode IORING_OP_%s; Sluice needs Linux >= 5.19",
                         needed_ops[i].name);
                result = SL_EUNSUPPORTED;
                break;
            }
        }
        io_uring_free_probe(probe);
    }
    io_uring_queue_exit(&uring);
    return result;
}

int sl_ring_init(struct sl_ring *ring, uint32_t entries)
{
    SL_ASSERT(entries > 0 && entries <= 4096);
    memset(ring, 0, sizeof(*ring));
    ring->deferred_tail = &ring->deferred_head;
    ring->impl = calloc(1, sizeof(*ring->impl));
    if (ring->impl == NULL) {
        return SL_ENOMEM;
    }
    struct io_uring_params params;
    memset(&params, 0, sizeof(params));
    /* CQ twice the SQ: writes, fsyncs and timeouts may all be in flight. */
    params.flags = IORING_SETUP_CQSIZE;
    params.cq_entries = entries * 2;
    /* Sized like the CQ (2 x entries); more failed ops queued between two
     * reaps than that trips the assertion in fault_complete (a test that
     * queues that much between loop runs must use a bigger ring). */
    ring->impl->fake_cap = entries * 2;
    ring->impl->fake = calloc(ring->impl->fake_cap, sizeof(*ring->impl->fake));
    if (ring->impl->fake == NULL) {
        free(ring->impl);
        ring->impl = NULL;
        return SL_ENOMEM;
    }
    int rc = io_uring_queue_init_params(entries, &ring->impl->uring, &params);
    if (rc < 0) {
        free(ring->impl->fake);
        free(ring->impl);
        ring->impl = NULL;
        return rc == -ENOSYS || rc == -EPERM ? SL_EUNSUPPORTED : sl_err_from_errno(-rc);
    }
    return SL_OK;
}

void sl_ring_fini(struct sl_ring *ring)
{
    if (ring->impl == NULL) {
        return;
    }
    io_uring_queue_exit(&ring->impl->uring);
    free(ring->impl->fake);
    free(ring->impl);
    ring->impl = NULL;
}

/* ------------------------------------------------------------------ */
/* fault injection                                                     */

void sl_ring_faults_arm(struct sl_ring *ring, const struct sl_ring_faults *f)
{
    SL_ASSERT(f->op == SL_FAULT_WRITE || f->op == SL_FAULT_FSYNC || f->op == SL_FAULT_READ);
    SL_ASSERT(f->nth >= 1 && f->err >= 0);
    SL_ASSERT(f->err != 0 || f->op != SL_FAULT_FSYNC); /* an fsync cannot be short */
    ring->impl->plan = *f;
    ring->impl->counts = (struct sl_ring_fault_counts){0, 0};
    ring->impl->armed = true;
}

void sl_ring_faults_disarm(struct sl_ring *ring)
{
    ring->impl->armed = false;
}

bool sl_ring_faults_armed(const struct sl_ring *ring, int op)
{
    return FAULT_ARMED(ring) && ring->impl->plan.op == op;
}

void sl_ring_faults_counts(const struct sl_ring *ring, struct sl_ring_fault_counts *out)
{
    *out = ring->impl->counts;
}

bool sl_ring_faults_plan(const struct sl_ring *ring, struct sl_ring_faults *out)
{
    *out = ring->impl->plan;
    return ring->impl->armed;
}

/* Counts an op of `kind` being queued; true when the plan selects it. */
static bool fault_pick(struct sl_ring_impl *im, int kind)
{
    if (im->plan.op != kind) {
        return false;
    }
    im->counts.seen++;
    bool hit = im->plan.persistent ? im->counts.seen >= im->plan.nth
                                   : im->counts.seen == im->plan.nth;
    im->counts.injected += hit ? 1 : 0;
    return hit;
}

/* Completes `op` with `res` at the next reap, without the kernel. */
static void fault_complete(struct sl_ring *ring, struct sl_io_op *op, int res)
{
    struct sl_ring_impl *im = ring->impl;
    SL_ASSERT(op->cb != NULL && res < 0);
    SL_ASSERT(im->fake_len < im->fake_cap);
    im->fake[(im->fake_head + im->fake_len) % im->fake_cap] = (struct fake_cqe){op, res};
    im->fake_len++;
    ring->inflight++;
}

/* Applies the plan to a write/read of `*len` bytes. Returns true when the op
 * was failed (already queued as a fake completion); may halve *len. */
static bool fault_transfer(struct sl_ring *ring, struct sl_io_op *op, int kind, uint32_t *len)
{
    if (!fault_pick(ring->impl, kind)) {
        return false;
    }
    if (ring->impl->plan.err != 0) {
        fault_complete(ring, op, -ring->impl->plan.err);
        return true;
    }
    *len = *len > 1 ? *len / 2 : *len;
    return false;
}

static struct io_uring_sqe *get_sqe(struct sl_ring *ring)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring->impl->uring);
    while (sqe == NULL) {
        /* SQ full: hand the queued entries to the kernel and retry. */
        int rc = io_uring_submit(&ring->impl->uring);
        SL_ASSERT(rc >= 0 || rc == -EAGAIN || rc == -EBUSY || rc == -EINTR);
        if (rc == -EBUSY || rc == -EAGAIN) {
            /* CQ overflow back-pressure: reap completions first. */
            sl_ring_run(ring, 0, 0);
        }
        sqe = io_uring_get_sqe(&ring->impl->uring);
    }
    return sqe;
}

static void queued(struct sl_ring *ring, struct io_uring_sqe *sqe, struct sl_io_op *op)
{
    SL_ASSERT(op->cb != NULL);
    io_uring_sqe_set_data(sqe, op);
    ring->inflight++;
}

void sl_ring_write(struct sl_ring *ring, struct sl_io_op *op, int fd, const void *buf,
                   uint32_t len, uint64_t offset)
{
    if (FAULT_ARMED(ring) && fault_transfer(ring, op, SL_FAULT_WRITE, &len)) {
        return;
    }
    struct io_uring_sqe *sqe = get_sqe(ring);
    io_uring_prep_write(sqe, fd, buf, len, offset);
    queued(ring, sqe, op);
}

void sl_ring_read(struct sl_ring *ring, struct sl_io_op *op, int fd, void *buf, uint32_t len,
                  uint64_t offset)
{
    if (FAULT_ARMED(ring) && fault_transfer(ring, op, SL_FAULT_READ, &len)) {
        return;
    }
    struct io_uring_sqe *sqe = get_sqe(ring);
    io_uring_prep_read(sqe, fd, buf, len, offset);
    queued(ring, sqe, op);
}

void sl_ring_fsync(struct sl_ring *ring, struct sl_io_op *op, int fd, int datasync)
{
    if (FAULT_ARMED(ring) && fault_pick(ring->impl, SL_FAULT_FSYNC)) {
        fault_complete(ring, op, -ring->impl->plan.err);
        return;
    }
    struct io_uring_sqe *sqe = get_sqe(ring);
    io_uring_prep_fsync(sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
    queued(ring, sqe, op);
}

void sl_ring_writeback(struct sl_ring *ring, struct sl_io_op *op, int fd, uint64_t offset,
                       uint32_t len)
{
    struct io_uring_sqe *sqe = get_sqe(ring);
    io_uring_prep_sync_file_range(sqe, fd, len, offset, SYNC_FILE_RANGE_WRITE);
    queued(ring, sqe, op);
}

void sl_ring_accept(struct sl_ring *ring, struct sl_io_op *op, int fd)
{
    struct io_uring_sqe *sqe = get_sqe(ring);
    io_uring_prep_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC);
    queued(ring, sqe, op);
}

void sl_ring_recv(struct sl_ring *ring, struct sl_io_op *op, int fd, void *buf, uint32_t len)
{
    struct io_uring_sqe *sqe = get_sqe(ring);
    io_uring_prep_recv(sqe, fd, buf, len, 0);
    queued(ring, sqe, op);
}

void sl_ring_send(struct sl_ring *ring, struct sl_io_op *op, int fd, const void *buf,
                  uint32_t len)
{
    struct io_uring_sqe *sqe = get_sqe(ring);
    io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL);
    queued(ring, sqe, op);
}

void sl_ring_cancel(struct sl_ring *ring, struct sl_io_op *op, struct sl_io_op *target)
{
    struct io_uring_sqe *sqe = get_sqe(ring);
    io_uring_prep_cancel(sqe, target, 0);
    queued(ring, sqe, op);
}

/* The kernel copies the timespec when the SQE is submitted, so submitting at
 * once makes a stack timespec safe. */
void sl_ring_timeout(struct sl_ring *ring, struct sl_io_op *op, uint64_t timeout_ns)
{
    struct __kernel_timespec ts = {
        .tv_sec = (long long)(timeout_ns / 1000000000u),
        .tv_nsec = (long long)(timeout_ns % 1000000000u),
    };
    struct io_uring_sqe *sqe = get_sqe(ring);
    io_uring_prep_timeout(sqe, &ts, 0, 0);
    queued(ring, sqe, op);
    int rc = io_uring_submit(&ring->impl->uring);
    SL_ASSERT(rc >= 0 || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY);
}

/* Runs the fake completions queued before this reap (FIFO); ones their
 * callbacks queue wait for the next reap, so this loop is bounded. */
static int reap_fake(struct sl_ring *ring)
{
    struct sl_ring_impl *im = ring->impl;
    uint32_t n = im->fake_len;
    int ran = 0;
    /* fake_len is re-read: a callback may reap (get_sqe on a full SQ). */
    for (uint32_t i = 0; i < n && im->fake_len > 0; i++) {
        struct fake_cqe c = im->fake[im->fake_head];
        im->fake_head = (im->fake_head + 1) % im->fake_cap;
        im->fake_len--;
        SL_ASSERT(ring->inflight > 0);
        ring->inflight--;
        c.op->cb(c.op, c.res);
        ran++;
    }
    return ran;
}

static int reap(struct sl_ring *ring)
{
    int ran = __builtin_expect(ring->impl->fake_len > 0, 0) ? reap_fake(ring) : 0;
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&ring->impl->uring, &cqe) == 0) {
        struct sl_io_op *op = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&ring->impl->uring, cqe);
        SL_ASSERT(op != NULL && ring->inflight > 0);
        ring->inflight--;
        op->cb(op, res);
        ran++;
    }
    return ran;
}

void sl_ring_defer(struct sl_ring *ring, struct sl_deferred *d)
{
    if (d->queued) {
        return;
    }
    d->queued = 1;
    d->next = NULL;
    *ring->deferred_tail = d;
    ring->deferred_tail = &d->next;
}

static uint32_t run_deferred(struct sl_ring *ring)
{
    uint32_t ran = 0;
    /* Deferred work may defer more; bounded because each item runs once per
     * queueing and owners queue only on new work. */
    while (ring->deferred_head != NULL) {
        struct sl_deferred *d = ring->deferred_head;
        ring->deferred_head = d->next;
        if (ring->deferred_head == NULL) {
            ring->deferred_tail = &ring->deferred_head;
        }
        d->queued = 0;
        d->fn(d);
        ran++;
    }
    return ran;
}

int sl_ring_run(struct sl_ring *ring, uint32_t wait_nr, uint64_t timeout_ns)
{
    struct io_uring *u = &ring->impl->uring;
    int rc;
    if (run_deferred(ring) > 0) {
        /* Deferred work is progress too (it may have completed what the
         * caller waits for): look for completions, do not block. */
        wait_nr = 0;
    }
    if (wait_nr == 0 || ring->inflight == 0 || ring->impl->fake_len > 0) {
        /* (a fake completion is ready now: do not block on the kernel) */
        rc = io_uring_submit(u);
    } else if (timeout_ns == 0) {
        rc = io_uring_submit_and_wait(u, wait_nr);
    } else {
        struct __kernel_timespec ts = {
            .tv_sec = (long long)(timeout_ns / 1000000000u),
            .tv_nsec = (long long)(timeout_ns % 1000000000u),
        };
        struct io_uring_cqe *cqe = NULL;
        rc = io_uring_submit_and_wait_timeout(u, &cqe, wait_nr, &ts, NULL);
    }
    SL_ASSERT(rc >= 0 || rc == -ETIME || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY);
    return reap(ring);
}

int sl_ring_run_until(struct sl_ring *ring, const int *done)
{
    while (!*done) {
        if (ring->inflight == 0 && ring->deferred_head == NULL) {
            return SL_EAGAIN;
        }
        sl_ring_run(ring, 1, 0);
    }
    return SL_OK;
}
