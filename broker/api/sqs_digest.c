/* sqs_digest.c - the digests SQS puts in its answers (MD5OfMessageBody,
 * MD5OfMessageAttributes) and ContentBasedDeduplication's SHA-256: the one
 * file that includes OpenSSL (libcrypto's EVP_Digest).
 *
 * MD5OfMessageAttributes (SQS's definition; the AWS SDKs check it): the
 * attributes sorted by name; for each, 4-byte big-endian length + name
 * bytes, length + data type, one transport byte (1: String and Number, 2:
 * Binary), length + value bytes; MD5 over the concatenation.
 * Threading: any (no state). Memory: one buffer per attribute digest.
 */
#include "broker/api/sqs_call.h"

#include "common/assert.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static void to_hex(const unsigned char *d, unsigned n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[2 * n] = '\0';
}

static void digest_hex(const EVP_MD *md, const void *data, size_t len, char *hex)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    int ok = EVP_Digest(data, len, d, &n, md, NULL);
    SL_ASSERT(ok == 1 && n <= 32); /* MD5 and SHA-256 do not fail on memory input */
    to_hex(d, n, hex);
}

void sqs_md5_hex(const void *data, size_t len, char *hex)
{
    digest_hex(EVP_md5(), data, len, hex);
}

void sqs_sha256_hex(const void *data, size_t len, char *hex)
{
    digest_hex(EVP_sha256(), data, len, hex);
}

static uint8_t *put_field(uint8_t *p, const void *data, size_t len)
{
    SL_ASSERT(len <= UINT32_MAX);
    p[0] = (uint8_t)(len >> 24);
    p[1] = (uint8_t)(len >> 16);
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
    memcpy(p + 4, data, len);
    return p + 4 + len;
}

static const uint8_t *mattr_value(const struct sl_sqs_mattr *a, size_t *len)
{
    if (a->string_value != NULL) {
        *len = strlen(a->string_value);
        return (const uint8_t *)a->string_value;
    }
    *len = a->binary_len;
    return a->binary;
}

bool sqs_md5_attrs(const struct sl_sqs_mattr *attrs, uint32_t n, char *hex)
{
    SL_ASSERT(n <= SL_SQS_MSG_ATTRS_MAX);
    uint32_t order[SL_SQS_MSG_ATTRS_MAX];
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t vlen = 0;
        mattr_value(&attrs[i], &vlen);
        total += 13 + strlen(attrs[i].name) + strlen(attrs[i].type) + vlen;
        uint32_t j = i; /* insertion sort by name: n <= 10 */
        while (j > 0 && strcmp(attrs[order[j - 1]].name, attrs[i].name) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    uint8_t *buf = malloc(total + 1);
    if (buf == NULL) {
        return false;
    }
    uint8_t *p = buf;
    for (uint32_t k = 0; k < n; k++) {
        const struct sl_sqs_mattr *a = &attrs[order[k]];
        size_t vlen = 0;
        const uint8_t *v = mattr_value(a, &vlen);
        p = put_field(p, a->name, strlen(a->name));
        p = put_field(p, a->type, strlen(a->type));
        *p++ = a->string_value != NULL ? 1 : 2;
        p = put_field(p, v, vlen);
    }
    SL_ASSERT((size_t)(p - buf) == total);
    sqs_md5_hex(buf, total, hex);
    free(buf);
    return true;
}
