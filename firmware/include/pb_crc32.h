/*
 * pb_crc32.h - CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, init and final
 * xor 0xFFFFFFFF): the same value as Python's zlib.crc32, so the host needs no
 * extra package to check frames.
 */
#ifndef PB_CRC32_H
#define PB_CRC32_H

#include <stddef.h>
#include <stdint.h>

uint32_t pb_crc32(const uint8_t *data, size_t len);

#endif /* PB_CRC32_H */
