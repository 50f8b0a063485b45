/* idx_cap_interval_raise.c - finding F1 (tests/fuzz/README.md) at production
 * scale: the default shard configuration, 8 MiB written with
 * index_interval_bytes = 4096, reopened with 16384, then appends. Aborts on
 * SL_ASSERT(g->idx_count < g->idx_cap) in sl_shard_append_ex while the bug is
 * open; prints "no abort" once it is fixed. Not run by CI (it aborts).
 *   cmake --build build/fuzz --target repro_idx_cap_interval_raise
 *   build/fuzz/repro_idx_cap_interval_raise [DIR]   (default /dev/shm/sluice-f1)
 */
#include "common/error.h"
#include "common/log.h"
#include "common/ring.h"
#include "storage/batch.h"
#include "storage/shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct sl_ring ring;
static int acked;
static uint8_t batch[8192];
static size_t blen;

static void cb(void *ctx, int err, uint64_t base, uint32_t n)
{
    (void)ctx;
    (void)base;
    (void)n;
    if (err != SL_OK) {
        printf("append failed: %s\n", sl_strerror(err));
        exit(1);
    }
    acked++;
}

static void fill(struct sl_shard *s, uint64_t bytes)
{
    int sent = 0;
    acked = 0;
    for (uint64_t w = 0; w < bytes; w += blen) {
        int rc;
        while ((rc = sl_shard_append(s, batch, blen, cb, NULL)) == SL_EAGAIN) {
            sl_ring_run(&ring, 1, 0);
        }
        if (rc != SL_OK) {
            printf("append: %s\n", sl_strerror(rc));
            exit(1);
        }
        sent++;
    }
    while (acked < sent) {
        sl_ring_run(&ring, 1, 0);
    }
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/dev/shm/sluice-f1";
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        return 1;
    }
    sl_log_set_level(SL_LOG_WARN);
    if (sl_ring_init(&ring, 256) != SL_OK) {
        return 77;
    }
    static uint8_t val[4001]; /* a 4096-byte batch */
    memset(val, 'x', sizeof(val));
    struct sl_batch_builder b;
    sl_batch_builder_init(&b, batch, sizeof(batch));
    struct sl_record r = {.value = val, .value_len = sizeof(val), .timestamp_ms = 1};
    if (sl_batch_builder_add(&b, &r) != SL_OK ||
        sl_batch_builder_finish(&b, SL_BATCH_CODEC_NONE, 0, NULL, NULL, 0, 0, 0, &blen) != SL_OK) {
        return 1;
    }
    struct sl_shard_config cfg;
    sl_shard_config_default(&cfg);
    cfg.index_interval_bytes = 4096;
    struct sl_shard *s;
    if (sl_shard_open(&ring, dir, &cfg, &s) != SL_OK) {
        return 1;
    }
    fill(s, 8u << 20);
    sl_shard_close(s);
    printf("wrote 8 MiB with index_interval_bytes 4096; reopening with 16384\n");
    fflush(stdout);
    cfg.index_interval_bytes = 16384;
    if (sl_shard_open(&ring, dir, &cfg, &s) != SL_OK) {
        return 1;
    }
    fill(s, 250u << 20);
    sl_shard_close(s);
    printf("no abort\n");
    (void)system(cmd);
    return 0;
}
