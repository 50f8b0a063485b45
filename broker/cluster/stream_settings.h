/* stream_settings.h - a cluster stream's settings as the metadata store keeps them
 * (/streams/<name>, #14): what every broker needs to make the stream in its own catalog.
 * One line of text, readable with zkCli:
 *   "shards=4 retention_hours=24 retention_bytes=0 compression=zstd rf=3"
 * decode refuses anything else with SL_EPROTO (the store's bytes are not trusted).
 */
#ifndef SL_CLUSTER_STREAM_SETTINGS_H
#define SL_CLUSTER_STREAM_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#define SL_CSTREAM_SETTINGS_MAX 256u /* the encoded line */
#define SL_CSTREAM_SHARDS_MAX   4096u

struct sl_cstream_settings {
    uint32_t shard_count;     /* 1 .. SL_CSTREAM_SHARDS_MAX */
    uint32_t retention_hours; /* 0 (each broker's default) .. 8760 */
    uint64_t retention_bytes;
    char compression[8];      /* "none" or "zstd" */
    uint32_t rf;              /* 1 .. SL_REPL_REPLICAS_MAX */
};

/* Returns the length written to buf (cap >= SL_CSTREAM_SETTINGS_MAX). */
size_t sl_cstream_encode(const struct sl_cstream_settings *s, char *buf, size_t cap);
int sl_cstream_decode(const uint8_t *data, size_t len, struct sl_cstream_settings *s);

#endif
