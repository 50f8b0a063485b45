/* fuzz_pview.c - the native front-end's in-place Produce parser
 * (broker/native/pview.c) over untrusted bytes, differentially against
 * protobuf-c's unpack (pview_check.h): no crash, no read outside the input
 * (ASan), and on every input protobuf-c accepts as a Produce the same
 * fields, the batch pointing into the input.
 *
 * Input: one frame's payload (no 4-byte header): a Request as a client
 * sends it. The input is copied into an allocation of its exact size so
 * that ASan sees any read past the end.
 */
#include "pview_check.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size > 0 ? size : 1);
    SL_ASSERT(copy != NULL);
    if (size > 0) {
        memcpy(copy, data, size);
    }
    pview_check(copy, size);
    free(copy);
    return 0;
}
