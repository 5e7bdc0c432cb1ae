/* crc32.h: the CRC-32 zlib computes (reflected polynomial 0xEDB88320), sixteen bytes a step.
 *
 * Python sees these declarations as they are (the cffi cdef is generated from this header).
 * The program cache checks each file it reads with it (decoder/program_cache.py): zlib 1.2.13's
 * own takes about 3.9 instructions a byte, and importing the zlib module loads two shared
 * libraries on every run.
 */
#ifndef WPPTRACE_CRC32_H
#define WPPTRACE_CRC32_H
#include <stddef.h>
#include <stdint.h>

#define CRC32_POLYNOMIAL 0xEDB88320

/* The CRC-32 of data[0:n] continuing from crc (0 to start): zlib.crc32(data, crc). */
uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t n);

#endif
