/*
 * pb_cobs.h - Consistent Overhead Byte Stuffing: removes every 0x00 from a frame so
 * that 0x00 can mark frame ends on the wire, and a receiver can always resync on it.
 */
#ifndef PB_COBS_H
#define PB_COBS_H

#include <stddef.h>
#include <stdint.h>

#define PB_COBS_OK            0
#define PB_COBS_ERR_OVERFLOW  (-1) /* output buffer too small */
#define PB_COBS_ERR_ZERO      (-2) /* a 0x00 inside encoded data */
#define PB_COBS_ERR_TRUNCATED (-3) /* a code byte points past the end of the data */

/* Worst-case encoded size of n bytes (without the 0x00 delimiter). */
#define PB_COBS_MAX_ENCODED(n) ((n) + (n) / 254u + 1u)

/* Encodes in[0..len) into out (no delimiter is appended). */
int pb_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap, size_t *out_len);

/* Decodes in[0..len) (no delimiter) into out; out may equal in (decoding never grows). */
int pb_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap, size_t *out_len);

#endif /* PB_COBS_H */
