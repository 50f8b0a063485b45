/* shard_fixture.h - what the shard tests that write, crash-copy and read back share
 * (test_shard_prezero.c, test_shard_dio.c): batches of known bytes, appends waited for,
 * whole-log reads, file sizes and batch ends, a copy of a shard directory (a crash image),
 * a shard opened on the test ring. Test code only: included once per test, after the test
 * defines g_ring (the ring every call runs), KiB and MiB and includes the system headers;
 * the functions are static, so each test keeps its own copy as before. */
#ifndef SL_TESTS_SHARD_FIXTURE_H
#define SL_TESTS_SHARD_FIXTURE_H

/* One uncompressed batch of `nrec` records of `vlen` bytes into buf. */
static uint32_t make_batch(uint8_t *buf, size_t cap, uint32_t nrec, uint32_t vlen, uint64_t salt)
{
    static uint8_t val[64 * KiB];
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, buf, cap);
    for (uint32_t i = 0; i < nrec; i++) {
        for (uint32_t k = 0; k < vlen && k < sizeof(val); k++) {
            val[k] = (uint8_t)(salt * 131 + i * 7 + k);
        }
        char key[32];
        int kl = snprintf(key, sizeof(key), "k%" PRIu64 "-%u", salt, i);
        struct sl_record r = {key, (uint32_t)kl, val, vlen, NULL, 0, 1600000000000ull + salt};
        if (sl_batch_builder_add(&b, &r) != SL_OK) {
            abort();
        }
    }
    size_t len = 0;
    if (sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 1, NULL, NULL, 0, 0, 0, &len) != SL_OK) {
        abort();
    }
    return (uint32_t)len;
}

struct acks {
    uint32_t pending;
    uint32_t failed;
    uint64_t bytes; /* of the acknowledged batches */
};

static struct acks g_acks;
static uint32_t g_last_len;

static void ack_cb(void *ctx, int err, uint64_t base, uint32_t count)
{
    (void)base;
    (void)count;
    uint32_t len = (uint32_t)(uintptr_t)ctx;
    g_acks.pending--;
    if (err != SL_OK) {
        g_acks.failed++;
    } else {
        g_acks.bytes += len;
    }
}

/* Appends `n` batches of ~`bytes` each (a few in flight), waits for the
 * acks; returns the bytes appended, or 0 on a failure. */
static uint64_t append_n(struct sl_shard *s, uint32_t n, uint32_t bytes, uint64_t *salt)
{
    static uint8_t buf[2 * MiB];
    uint64_t sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t len = make_batch(buf, sizeof(buf), 4, bytes / 4, (*salt)++);
        int rc;
        while ((rc = sl_shard_append(s, buf, len, ack_cb, (void *)(uintptr_t)len)) == SL_EAGAIN) {
            sl_ring_run(&g_ring, 1, 0);
        }
        if (rc != SL_OK) {
            fprintf(stderr, "  append: %s\n", sl_errname(rc));
            return 0;
        }
        g_acks.pending++;
        sum += len;
        g_last_len = len;
        if (i % 4 == 3) {
            while (g_acks.pending > 0) {
                sl_ring_run(&g_ring, 1, 0);
            }
        }
    }
    /* The acks, then the zero writes they started (the files settle). */
    while (g_acks.pending > 0 || g_ring.inflight > 0) {
        sl_ring_run(&g_ring, 1, 0);
    }
    return g_acks.failed == 0 ? sum : 0;
}

struct rdw {
    int done;
    int err;
};

static void read_cb(struct sl_shard_read *rd, int err)
{
    struct rdw *w = rd->ctx;
    w->err = err;
    w->done++;
}

/* Reads the shard from `from` to its tail; returns the records read, or
 * UINT64_MAX on an error or a gap. */
static uint64_t read_all(struct sl_shard *s, uint64_t from)
{
    static uint8_t buf[4 * MiB];
    struct sl_shard_stats st;
    sl_shard_stats(s, &st);
    uint64_t seq = from, records = 0;
    while (seq < st.visible_seq) {
        struct sl_shard_read rd;
        struct rdw w = {0, 0};
        memset(&rd, 0, sizeof(rd));
        rd.from = SL_READ_SEQ;
        rd.seq = seq;
        rd.buf = buf;
        rd.buf_cap = sizeof(buf);
        rd.max_bytes = sizeof(buf);
        rd.cb = read_cb;
        rd.ctx = &w;
        sl_shard_read(s, &rd);
        while (w.done == 0) {
            sl_ring_run(&g_ring, 1, 0);
        }
        if (w.done != 1 || w.err != SL_OK || rd.batch_count == 0 || rd.next_seq <= seq) {
            return UINT64_MAX;
        }
        /* every batch verifies and continues the sequence */
        uint32_t off = 0;
        uint64_t expect = seq;
        while (off < rd.len) {
            struct sl_batch_header h;
            if (sl_batch_validate(buf + off, rd.len - off, rd.len - off, &h) != SL_OK ||
                (off > 0 && h.base_seq != expect)) {
                return UINT64_MAX;
            }
            expect = sl_batch_last_seq(&h) + 1;
            records += h.record_count;
            off += h.length;
        }
        seq = rd.next_seq;
    }
    return records;
}

static int64_t fsize(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

static void log_path(char *out, size_t cap, const char *dir, uint64_t base)
{
    snprintf(out, cap, "%s/%020" PRIu64 ".log", dir, base);
}

/* The end of the last whole batch of a .log file (walking headers from 0). */
static uint64_t batches_end(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    uint64_t pos = 0;
    uint8_t hdr[SL_BATCH_HEADER_BYTES];
    for (;;) {
        struct sl_batch_header h;
        if (pread(fd, hdr, sizeof(hdr), (off_t)pos) != (ssize_t)sizeof(hdr) ||
            sl_batch_peek(hdr, sizeof(hdr), &h) != SL_OK) {
            break;
        }
        pos += h.length;
    }
    close(fd);
    return pos;
}

/* Copies every regular file of `from` into the (fresh) directory `to`. */
static int copy_dir(const char *from, const char *to)
{
    if (mkdir(to, 0755) != 0) {
        return -1;
    }
    DIR *d = opendir(from);
    if (d == NULL) {
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    static uint8_t buf[1 * MiB];
    while ((e = readdir(d)) != NULL && rc == 0) {
        char a[PATH_MAX + 300], b[PATH_MAX + 300];
        snprintf(a, sizeof(a), "%s/%s", from, e->d_name);
        snprintf(b, sizeof(b), "%s/%s", to, e->d_name);
        struct stat sb;
        if (stat(a, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            continue;
        }
        int in = open(a, O_RDONLY | O_CLOEXEC);
        int out = open(b, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ssize_t n;
        while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0) {
            if (write(out, buf, (size_t)n) != n) {
                rc = -1;
                break;
            }
        }
        rc = in < 0 || out < 0 ? -1 : rc;
        if (in >= 0) {
            close(in);
        }
        if (out >= 0) {
            close(out);
        }
    }
    closedir(d);
    return rc;
}

static struct sl_shard *open_shard(const char *dir, const struct sl_shard_config *cfg)
{
    struct sl_shard *s = NULL;
    int rc = sl_shard_open(&g_ring, dir, cfg, &s);
    if (rc != SL_OK) {
        fprintf(stderr, "  open %s: %s\n", dir, sl_errname(rc));
        return NULL;
    }
    return s;
}

#endif
