/* hello.c - a program of a libsluice user, built by tests/install/install_tree.sh outside
 * the source tree against the installed <sluice.h> with pkg-config's flags only (shared
 * and static). `hello HOST:PORT STREAM`: creates the stream, produces a record through a
 * producer, consumes it back, and checks that errors come back as SLUICE_E* codes.
 * Exit 0 = all of it worked; 1 = a step failed (named on stderr).
 */
#include <sluice.h>

#include <stdio.h>
#include <string.h>

static int failed(const char *what, int rc)
{
    fprintf(stderr, "hello: %s: %s (%d): %s\n", what, sluice_strerror(rc), rc,
            sluice_last_error());
    return 1;
}

struct delivery {
    int err;
    int reported;
};

static void on_delivery(void *ctx, int err, uint32_t shard, uint64_t seq)
{
    struct delivery *d = ctx;
    (void)shard;
    (void)seq;
    d->err = err;
    d->reported = 1;
}

/* Produces one record and waits for its delivery report. */
static int produce_one(sluice_client *c, const char *stream, const char *value)
{
    sluice_producer *p = NULL;
    int rc = sluice_producer_new(c, stream, NULL, &p);
    if (rc != SLUICE_OK) {
        return failed("sluice_producer_new", rc);
    }
    struct delivery d = {SLUICE_OK, 0};
    rc = sluice_produce(p, "k", 1, value, strlen(value), NULL, 0, on_delivery, &d);
    if (rc == SLUICE_OK) {
        rc = sluice_producer_flush(p, 10000);
    }
    sluice_producer_free(p);
    if (rc != SLUICE_OK) {
        return failed("sluice_produce/flush", rc);
    }
    if (!d.reported || d.err != SLUICE_OK) {
        return failed("delivery report", d.reported ? d.err : SLUICE_EAGAIN);
    }
    return 0;
}

/* Reads the stream from the oldest record and expects `value` first. */
static int consume_one(sluice_client *c, const char *stream, const char *value)
{
    sluice_consumer *k = NULL;
    int rc = sluice_consumer_new(c, stream, NULL, NULL, &k);
    if (rc != SLUICE_OK) {
        return failed("sluice_consumer_new", rc);
    }
    struct sluice_record recs[4];
    size_t n = 0;
    for (int i = 0; i < 50 && n == 0 && rc == SLUICE_OK; i++) {
        rc = sluice_consumer_poll(k, recs, 4, &n, 200);
    }
    int bad = 0;
    if (rc != SLUICE_OK) {
        bad = failed("sluice_consumer_poll", rc);
    } else if (n == 0 || recs[0].value_len != strlen(value) ||
               memcmp(recs[0].value, value, recs[0].value_len) != 0) {
        fprintf(stderr, "hello: consumed %zu records, not the one produced\n", n);
        bad = 1;
    }
    sluice_consumer_free(k);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: hello HOST:PORT STREAM\n");
        return 2;
    }
    if (strcmp(sluice_strerror(SLUICE_ENOTFOUND), sluice_strerror(SLUICE_OK)) == 0) {
        fprintf(stderr, "hello: sluice_strerror does not tell codes apart\n");
        return 1;
    }
    sluice_client *c = NULL;
    int rc = sluice_client_new(argv[1], NULL, &c);
    if (rc != SLUICE_OK) {
        return failed("sluice_client_new", rc);
    }
    const char *stream = argv[2];
    struct sluice_stream_opts so = {.shard_count = 1};
    int bad = 0;
    rc = sluice_stream_create(c, stream, &so, NULL);
    if (rc != SLUICE_OK) {
        bad = failed("sluice_stream_create", rc);
    }
    if (!bad && (rc = sluice_stream_create(c, stream, &so, NULL)) != SLUICE_EEXIST) {
        bad = failed("a second sluice_stream_create (want SLUICE_EEXIST)", rc);
    }
    struct sluice_stream_info *info = NULL;
    if (!bad && (rc = sluice_stream_describe(c, "no-such-stream", &info)) != SLUICE_ENOTFOUND) {
        bad = failed("sluice_stream_describe of a missing stream (want SLUICE_ENOTFOUND)", rc);
    }
    sluice_stream_info_free(info);
    if (!bad) {
        bad = produce_one(c, stream, "hello, installed libsluice");
    }
    if (!bad) {
        bad = consume_one(c, stream, "hello, installed libsluice");
    }
    sluice_client_free(c);
    if (!bad) {
        printf("hello: produced and consumed through the installed libsluice\n");
    }
    return bad;
}
