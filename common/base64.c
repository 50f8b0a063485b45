/* base64.c - RFC 4648 base64 (see base64.h). The decoder reads bytes a
 * client sent (Kinesis Data), so it refuses rather than skips anything
 * outside the alphabet; fuzzed through tests/fuzz/fuzz_kinesis.c. */
#include "common/base64.h"

#include "common/assert.h"
#include "common/error.h"

#include <stdlib.h>

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void sl_b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    SL_ASSERT(o == sl_b64_len(n));
}

char *sl_b64_dup(const void *in, size_t n)
{
    char *s = malloc(sl_b64_len(n) + 1);
    if (s != NULL) {
        sl_b64_encode(in, n, s);
        s[sl_b64_len(n)] = '\0';
    }
    return s;
}

/* Each base64 character's value + 1; 0 for every other byte. */
static const uint8_t B64_VALUE1[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,
    ['H'] = 8,  ['I'] = 9,  ['J'] = 10,  ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14,
    ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21,
    ['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28,
    ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35,
    ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
    ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49,
    ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63,
    ['/'] = 64,
};

/* A character's value, or above 63 for a byte that is not base64. */
static uint32_t b64_value(unsigned char c)
{
    return (uint32_t)B64_VALUE1[c] - 1u;
}

int sl_b64_decode(const char *in, size_t n, uint8_t *out, size_t *out_len)
{
    if (n % 4 == 0 && n > 0 && in[n - 1] == '=') {
        n -= (n >= 2 && in[n - 2] == '=') ? 2 : 1;
    }
    if (n % 4 == 1) {
        return SL_EPROTO;
    }
    const unsigned char *u = (const unsigned char *)in;
    size_t o = 0, i = 0;
    for (; i + 4 <= n; i += 4) { /* whole quads: one check per quad */
        uint32_t a = b64_value(u[i]), b = b64_value(u[i + 1]), c = b64_value(u[i + 2]),
                 d = b64_value(u[i + 3]);
        if ((a | b | c | d) > 63) {
            return SL_EPROTO;
        }
        uint32_t acc = a << 18 | b << 12 | c << 6 | d;
        out[o++] = (uint8_t)(acc >> 16);
        out[o++] = (uint8_t)(acc >> 8);
        out[o++] = (uint8_t)acc;
    }
    uint32_t acc = 0;
    for (size_t k = i; k < n; k++) {
        uint32_t v = b64_value(u[k]);
        if (v > 63) {
            return SL_EPROTO;
        }
        acc = acc << 6 | v;
    }
    if (n % 4 == 2) {
        out[o++] = (uint8_t)(acc >> 4);
    } else if (n % 4 == 3) {
        out[o++] = (uint8_t)(acc >> 10);
        out[o++] = (uint8_t)(acc >> 2);
    }
    SL_ASSERT(o == n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1));
    *out_len = o;
    return SL_OK;
}
