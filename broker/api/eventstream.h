/* eventstream.h - the AWS event stream framing
 * (application/vnd.amazon.eventstream), used by streaming answers such as
 * Kinesis SubscribeToShard. Encoding only; pure.
 *
 * A message: u32 total length | u32 headers length | u32 CRC32 of those 8
 * bytes (the prelude) | headers | payload | u32 CRC32 of everything before
 * it; all big-endian. A header: u8 name length | name | u8 type (7 =
 * string) | u16 value length | value.
 */
#ifndef SL_API_EVENTSTREAM_H
#define SL_API_EVENTSTREAM_H

#include <stddef.h>
#include <stdint.h>

#define SL_ES_PRELUDE_BYTES    12u
#define SL_ES_TRAILER_BYTES    4u
#define SL_ES_HEADER_NAME_MAX  255u
#define SL_ES_HEADER_VALUE_MAX 65535u

struct sl_es_header {
    const char *name;  /* borrowed */
    const char *value; /* borrowed */
};

/* Bytes of a message with these headers and a payload of `len` bytes. */
size_t sl_es_size(const struct sl_es_header *h, uint32_t n, size_t len);
/* Writes the message into dst (sl_es_size bytes; all borrowed). */
void sl_es_write(uint8_t *dst, const struct sl_es_header *h, uint32_t n, const void *payload,
                 size_t len);
/* CRC-32 (IEEE 802.3, as zlib's crc32) of p, continuing from crc (0 to start). */
uint32_t sl_es_crc32(uint32_t crc, const void *p, size_t n);

#endif
