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
#define CRC32C_POLYNOMIAL 0x82F63B78

/* The CRC-32 of data[0:n] continuing from crc (0 to start): zlib.crc32(data, crc). */
uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t n);

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of data[0:n] continuing from crc (0 to
 * start): eight bytes an instruction where the CPU has SSE 4.2's crc32 (about 0.4 instructions
 * a byte against 3.7 for crc32_update), else crc32c_bytes. For checks within one run (fmt -j's
 * kept TMF texts), where no other program reads the value. */
uint32_t crc32c_update(uint32_t crc, const uint8_t *data, size_t n);
/* The same a byte a step, whatever the CPU (the tests compare the two). */
uint32_t crc32c_bytes(uint32_t crc, const uint8_t *data, size_t n);

#endif
