/* fuzz_epochs.c - the leader-epochs file decoder (storage/epochs.c) over
 * untrusted bytes: the file is read from disk at every start of a replica,
 * and whatever it yields goes into the replica's cache, which asserts its
 * invariants (broker/cluster/repl.c).
 *
 * Input: byte 0 = mode (bit 0: recompute the trailing XXH3-64 first, so
 * mutations get past the checksum to the checks of meaning), then the file.
 * Checks beyond ASan/UBSan: decode returns SL_OK, SL_ECORRUPT or
 * SL_EUNSUPPORTED, the latter two with a reason; what decodes satisfies the
 * cache's invariants (sl_epochs_check: n <= SL_EPOCHS_MAX, epochs and starts
 * strictly increasing and not negative), encodes to exactly the input (the
 * format has one encoding per cache), and stays valid under the cache's own
 * operations (a truncation at a start from the input, an add after the last).
 */
#include "common/assert.h"
#include "common/bytes.h"
#include "common/checksum.h"
#include "common/error.h"
#include "storage/epochs.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[SL_EPOCHS_FILE_BYTES_MAX + 64];
    static uint8_t out[SL_EPOCHS_FILE_BYTES_MAX];
    static struct sl_epochs c, d;
    if (size < 1 || size - 1 > sizeof(buf)) {
        return 0;
    }
    size_t len = size - 1;
    memcpy(buf, data + 1, len);
    if ((data[0] & 1) != 0 && len >= 8) {
        sl_put_u64(buf + len - 8, sl_checksum64(buf, len - 8));
    }
    char why[160];
    why[0] = '\0';
    int rc = sl_epochs_decode(buf, len, &c, why, sizeof(why));
    if (rc != SL_OK) {
        SL_ASSERT(rc == SL_ECORRUPT || rc == SL_EUNSUPPORTED);
        SL_ASSERT(why[0] != '\0');
        return 0;
    }
    sl_epochs_check(&c);
    size_t n = sl_epochs_encode(&c, out, sizeof(out));
    SL_ASSERT(n == len && memcmp(out, buf, len) == 0);
    SL_ASSERT(sl_epochs_decode(out, n, &d, why, sizeof(why)) == SL_OK);
    SL_ASSERT(d.n == c.n && d.last_led_epoch == c.last_led_epoch);
    if (c.n > 0) {
        struct sl_epoch_entry last = c.e[c.n - 1];
        if (last.epoch < INT32_MAX && last.start_offset < INT64_MAX) {
            sl_epochs_add(&c, last.epoch + 1, last.start_offset + 1);
        }
        sl_epochs_truncate(&c, c.e[data[0] % c.n].start_offset);
        sl_epochs_check(&c);
    }
    return 0;
}
