/* crc32.c: zlib's CRC-32 by slicing by sixteen, and CRC-32C (crc32.h). */
#include <pthread.h>
#include <string.h>
#include "crc32.h"

static uint32_t tables[16][256];
static pthread_once_t tables_made = PTHREAD_ONCE_INIT;

static void make_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ CRC32_POLYNOMIAL : c >> 1;
        tables[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 16; t++)
            tables[t][i] = (tables[t - 1][i] >> 8) ^ tables[0][tables[t - 1][i] & 0xFF];
}

uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t n)
{
    pthread_once(&tables_made, make_tables);
    crc = ~crc;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; n >= 16; n -= 16, data += 16) {
        uint32_t w[4];
        memcpy(w, data, 16);
        uint32_t a = w[0] ^ crc, b = w[1], c = w[2], d = w[3];
        crc = tables[15][a & 0xFF] ^ tables[14][(a >> 8) & 0xFF] ^ tables[13][(a >> 16) & 0xFF]
            ^ tables[12][a >> 24] ^ tables[11][b & 0xFF] ^ tables[10][(b >> 8) & 0xFF]
            ^ tables[9][(b >> 16) & 0xFF] ^ tables[8][b >> 24] ^ tables[7][c & 0xFF]
            ^ tables[6][(c >> 8) & 0xFF] ^ tables[5][(c >> 16) & 0xFF] ^ tables[4][c >> 24]
            ^ tables[3][d & 0xFF] ^ tables[2][(d >> 8) & 0xFF] ^ tables[1][(d >> 16) & 0xFF]
            ^ tables[0][d >> 24];
    }
#endif
    for (; n; n--) crc = (crc >> 8) ^ tables[0][(crc ^ *data++) & 0xFF];
    return ~crc;
}

static uint32_t castagnoli[256];
static int has_crc_instruction;
static pthread_once_t castagnoli_made = PTHREAD_ONCE_INIT;

static void make_castagnoli(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ CRC32C_POLYNOMIAL : c >> 1;
        castagnoli[i] = c;
    }
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    has_crc_instruction = __builtin_cpu_supports("sse4.2");
#endif
}

uint32_t crc32c_bytes(uint32_t crc, const uint8_t *data, size_t n)
{
    pthread_once(&castagnoli_made, make_castagnoli);
    crc = ~crc;
    for (; n; n--) crc = (crc >> 8) ^ castagnoli[(crc ^ *data++) & 0xFF];
    return ~crc;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_instruction(uint32_t crc, const uint8_t *data, size_t n)
{
    uint64_t c = ~crc;
    for (; n >= 8; n -= 8, data += 8) {
        uint64_t word;
        memcpy(&word, data, 8);
        c = __builtin_ia32_crc32di(c, word);
    }
    uint32_t c32 = (uint32_t)c;
    for (; n; n--) c32 = __builtin_ia32_crc32qi(c32, *data++);
    return ~c32;
}
#endif

uint32_t crc32c_update(uint32_t crc, const uint8_t *data, size_t n)
{
    pthread_once(&castagnoli_made, make_castagnoli);
#if defined(__x86_64__) && defined(__GNUC__)
    if (has_crc_instruction) return crc32c_instruction(crc, data, n);
#endif
    return crc32c_bytes(crc, data, n);
}
