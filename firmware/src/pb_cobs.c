/* pb_cobs.c - COBS encode/decode (see pb_cobs.h). */
#include "pb_cobs.h"

int pb_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    size_t code_at = 0; /* where the code byte of the current block goes */
    size_t o = 1;
    uint8_t code = 1; /* 1 + number of non-zero bytes in the current block */

    if (out_cap < 1u) {
        return PB_COBS_ERR_OVERFLOW;
    }
    for (size_t i = 0; i < len; i++) {
        if (in[i] == 0u) {
            out[code_at] = code;
            code_at = o++;
            code = 1;
        } else {
            if (o >= out_cap) {
                return PB_COBS_ERR_OVERFLOW;
            }
            out[o++] = in[i];
            code++;
            /* A full block of 254 data bytes ends without an implied zero. */
            if (code == 0xFFu && i + 1u < len) {
                out[code_at] = code;
                code_at = o++;
                code = 1;
            }
        }
        if (code_at >= out_cap) {
            return PB_COBS_ERR_OVERFLOW;
        }
    }
    out[code_at] = code;
    *out_len = o;
    return PB_COBS_OK;
}

int pb_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    size_t i = 0;
    size_t o = 0;

    while (i < len) {
        uint8_t code = in[i++];
        if (code == 0u) {
            return PB_COBS_ERR_ZERO;
        }
        /* code - 1 data bytes follow; they must all be present and non-zero. */
        for (uint8_t k = 1; k < code; k++) {
            if (i >= len) {
                return PB_COBS_ERR_TRUNCATED;
            }
            if (in[i] == 0u) {
                return PB_COBS_ERR_ZERO;
            }
            if (o >= out_cap) {
                return PB_COBS_ERR_OVERFLOW;
            }
            out[o++] = in[i++];
        }
        /* Every block but a full one (0xFF) and the last stands for a trailing zero. */
        if (code != 0xFFu && i < len) {
            if (o >= out_cap) {
                return PB_COBS_ERR_OVERFLOW;
            }
            out[o++] = 0u;
        }
    }
    *out_len = o;
    return PB_COBS_OK;
}
