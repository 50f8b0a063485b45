/* kinesis_crypto.c - MD5 and HMAC-SHA256 for the Kinesis API (see
 * kinesis_crypto.h), through OpenSSL 3's libcrypto.
 *
 * The iterator key is 32 random bytes drawn once per process: iterators do
 * not survive a restart (the boot id tells a stale one from a forged one).
 * Threading: the main loop. Ownership: no pointer is kept.
 */
#include "broker/api/kinesis_crypto.h"

#include "common/assert.h"
#include "common/error.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>
#include <sys/random.h>

#define KEY_BYTES 32u

static uint8_t g_key[KEY_BYTES];
static uint64_t g_boot;
static bool g_ready;

sl_u128 sl_kin_md5(const void *data, size_t len)
{
    uint8_t d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int ok = EVP_Digest(data, len, d, &n, EVP_md5(), NULL);
    SL_ASSERT(ok == 1 && n == 16); /* MD5 cannot fail on memory input */
    return sl_kin_u128_be(d);
}

int sl_kin_crypto_init(void)
{
    if (g_ready) {
        return SL_OK;
    }
    uint8_t buf[KEY_BYTES + sizeof(g_boot)];
    size_t got = 0;
    while (got < sizeof(buf)) {
        ssize_t n = getrandom(buf + got, sizeof(buf) - got, 0);
        if (n <= 0) {
            return SL_ESYS;
        }
        got += (size_t)n;
    }
    memcpy(g_key, buf, KEY_BYTES);
    memcpy(&g_boot, buf + KEY_BYTES, sizeof(g_boot));
    g_ready = true;
    return SL_OK;
}

uint64_t sl_kin_boot_id(void)
{
    SL_ASSERT(g_ready);
    return g_boot;
}

void sl_kin_mac(const void *data, size_t len, uint8_t *mac)
{
    SL_ASSERT(g_ready);
    uint8_t d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    uint8_t *r = HMAC(EVP_sha256(), g_key, KEY_BYTES, data, len, d, &n);
    SL_ASSERT(r != NULL && n >= SL_KIN_MAC_BYTES);
    memcpy(mac, d, SL_KIN_MAC_BYTES);
}

bool sl_kin_mac_equal(const uint8_t *a, const uint8_t *b)
{
    return CRYPTO_memcmp(a, b, SL_KIN_MAC_BYTES) == 0;
}
