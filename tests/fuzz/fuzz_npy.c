/* fuzz-iterations: 500000
 *
 * gq_npy_parse on arbitrary bytes: it must never read outside the buffer, and what it
 * accepts must be self-consistent (the data it reports lies exactly at the end of the
 * buffer, and the descriptor passes gq_tdesc_check). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gq_tdesc_t desc;
    size_t off = 0, nbytes = 0;
    int fortran = -1, byteswap = -1;
    char err[256];
    err[0] = '\0';
    gq_status rc = gq_npy_parse(data, size, &desc, &off, &fortran, &byteswap, err, sizeof err);
    if (memchr(err, '\0', sizeof err) == NULL)
        abort();
    if (rc != GQ_OK) {
        /* Every refusal says why. */
        if (err[0] == '\0')
            abort();
    } else {
        if (gq_tdesc_check(&desc, NULL, &nbytes) != GQ_OK)
            abort();
        if (off > size || size - off != nbytes || (fortran != 0 && fortran != 1) ||
            (byteswap != 0 && byteswap != 1))
            abort();
        /* Touch the first and last data bytes: ASan checks they are inside the input. */
        volatile uint8_t sink = 0;
        if (nbytes)
            sink ^= data[off] ^ data[off + nbytes - 1];
        (void)sink;
    }

    /* Short and absent message buffers must be safe too: messages are cut, never overrun. */
    char tiny[5];
    gq_tdesc_t d2;
    gq_status rc2 = gq_npy_parse(data, size, &d2, &off, &fortran, &byteswap, tiny, sizeof tiny);
    gq_status rc3 = gq_npy_parse(data, size, &d2, &off, &fortran, &byteswap, NULL, 0);
    if (rc2 != rc || rc3 != rc)
        abort();
    return 0;
}
