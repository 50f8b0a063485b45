/* kinesis_crypto.h - the Kinesis API's uses of OpenSSL's libcrypto (the only
 * module that includes OpenSSL headers): MD5 of partition keys, and the
 * HMAC that authenticates shard iterators under a random per-process key.
 *
 * Threading: the main loop (the key is process state, set once).
 */
#ifndef SL_API_KINESIS_CRYPTO_H
#define SL_API_KINESIS_CRYPTO_H

#include "broker/api/kinesis_codec.h"

#include <stddef.h>
#include <stdint.h>

/* MD5 of `len` bytes at `data` (borrowed) as a 128-bit big-endian integer. */
sl_u128 sl_kin_md5(const void *data, size_t len);

/* Draws the per-process key and boot id (getrandom). Idempotent.
 * Errors: SL_ESYS. */
int sl_kin_crypto_init(void);
/* The process's random id, carried in iterators (a token from an earlier
 * process is expired, not forged). */
uint64_t sl_kin_boot_id(void);
/* SL_KIN_MAC_BYTES of HMAC-SHA256(key, data) into mac. */
void sl_kin_mac(const void *data, size_t len, uint8_t *mac);
/* Constant-time comparison of two MACs. */
bool sl_kin_mac_equal(const uint8_t *a, const uint8_t *b);

#endif
