/* fuzz_util.h - helpers shared by the fuzz targets and the seed generator.
 *
 * Batches carry two checksums (the stamp check over the header, XXH3 over the
 * body), so random mutations almost never get past sl_batch_peek. The
 * targets therefore have a "fix-up" mode, chosen by a flag byte of the
 * input, that recomputes the checksums (and optionally the length and the
 * sequence) of mutated bytes before handing them to the code under test:
 * that lets libFuzzer explore the record decoder, zstd and recovery logic
 * behind the checksums. The raw mode exercises the checks themselves.
 * The layout constants mirror storage/batch.c (docs/FORMAT.md).
 */
#ifndef SL_FUZZ_UTIL_H
#define SL_FUZZ_UTIL_H

#include "common/checksum.h"
#include "storage/batch.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FZ_OFF_MAGIC 0u
#define FZ_OFF_LENGTH 4u
#define FZ_OFF_BASE_SEQ 8u
#define FZ_OFF_RESERVED0 24u
#define FZ_OFF_STAMP 28u
#define FZ_OFF_CHECKSUM 32u
#define FZ_OFF_VERSION 40u
#define FZ_OFF_COUNT 44u

static inline uint32_t fz_ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void fz_st32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline void fz_st64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* Recomputes the body checksum and the stamp check of the batch at `p`
 * whose declared length (kept, or set to `len` when set_len) must be
 * <= len. Also writes the magic and zeroes reserved0 (both are checked
 * before anything else). Returns the batch length, or 0 when the bytes
 * cannot hold a batch. */
static inline size_t fz_fix_batch(uint8_t *p, size_t len, int set_len)
{
    if (len <= SL_BATCH_HEADER_BYTES) {
        return 0;
    }
    if (set_len) {
        fz_st32(p + FZ_OFF_LENGTH, (uint32_t)len);
    }
    uint32_t blen = fz_ld32(p + FZ_OFF_LENGTH);
    if (blen <= SL_BATCH_HEADER_BYTES || blen > len) {
        return 0;
    }
    fz_st32(p + FZ_OFF_MAGIC, SL_BATCH_MAGIC);
    fz_st32(p + FZ_OFF_RESERVED0, 0);
    fz_st64(p + FZ_OFF_CHECKSUM, sl_checksum64(p + FZ_OFF_VERSION, blen - FZ_OFF_VERSION));
    uint8_t tmp[FZ_OFF_STAMP + 4];
    memcpy(tmp, p, FZ_OFF_STAMP);
    memcpy(tmp + FZ_OFF_STAMP, p + FZ_OFF_COUNT, 4);
    fz_st32(p + FZ_OFF_STAMP, sl_checksum32(tmp, sizeof(tmp)));
    return blen;
}

/* The same stamp as sl_batch_stamp, for a base sequence only. */
static inline void fz_set_base_seq(uint8_t *p, uint64_t seq)
{
    fz_st64(p + FZ_OFF_BASE_SEQ, seq);
}

/* Index entry layout of storage/shard.c (32 bytes, host = little-endian). */
struct fz_idx_entry {
    uint64_t seq;
    uint64_t pos;
    uint64_t time_ms;
    uint32_t len;
    uint32_t check;
};

static inline void fz_fix_idx_entry(struct fz_idx_entry *e)
{
    e->check = sl_checksum32(e, offsetof(struct fz_idx_entry, check));
}

/* Touches every byte of a slice so ASan checks that the view is in bounds. */
static inline uint32_t fz_touch(const uint8_t *p, size_t n)
{
    uint32_t h = 0;
    for (size_t i = 0; i < n; i++) {
        h = h * 31u + p[i];
    }
    return h;
}

#endif
