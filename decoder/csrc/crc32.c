/* crc32.c: zlib's CRC-32 by slicing by sixteen (crc32.h). */
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
