/* wppr_time.c: FILETIME -> tracefmt's time text MM/DD/YYYY-HH:MM:SS.mmm (local time unless
 * UTC), the date and time of day made once per second. Milliseconds are truncated, as
 * FILETIME -> SYSTEMTIME conversion does. Times the C library cannot place fall back to
 * proleptic-Gregorian UTC arithmetic with the year clamped to 0..9999. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "_wppr_internal.h"

#define TICKS_PER_SECOND 10000000LL
#define UNIX_EPOCH_SECOND 11644473600LL    /* 1970-01-01 as FILETIME seconds */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b) && ((a < 0) != (b < 0))) q--;
    return q;
}

static void civil_from_unix(int64_t unix_second, struct tm *tm)
{
    int64_t days = floor_div(unix_second, 86400), secs = unix_second - days * 86400;
    int64_t z = days + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2) y++;
    if (y < 0) y = 0;
    if (y > 9999) y = 9999;
    memset(tm, 0, sizeof *tm);
    tm->tm_year = (int)(y - 1900);
    tm->tm_mon = (int)(m - 1);
    tm->tm_mday = (int)d;
    tm->tm_hour = (int)(secs / 3600);
    tm->tm_min = (int)(secs / 60 % 60);
    tm->tm_sec = (int)(secs % 60);
}

static int second_text(int64_t second, int utc, char *out, size_t size)
{
    time_t unix_second = (time_t)(second - UNIX_EPOCH_SECOND);
    struct tm tm;
    if (!(utc ? gmtime_r(&unix_second, &tm) : localtime_r(&unix_second, &tm)))
        civil_from_unix(second - UNIX_EPOCH_SECOND, &tm);
    return snprintf(out, size, "%02d/%02d/%04lld-%02d:%02d:%02d.", tm.tm_mon + 1, tm.tm_mday,
                    (long long)tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int wppr_time_cached(wppr_second_cache *c, int64_t milli, char *out)
{
    /* events come many to a millisecond: the whole text is made once per millisecond */
    if (milli != c->milli || c->second == INT64_MIN) {
        int64_t second = floor_div(milli, 1000);
        int64_t ms = milli - second * 1000;
        if (second != c->second) {
            int n = second_text(second, c->utc, c->text, sizeof c->text - 3);
            c->len = n < 0 ? 0 : n < (int)sizeof c->text - 4 ? n : (int)sizeof c->text - 4;
            c->second = second;
        }
        c->text[c->len] = (char)('0' + ms / 100);
        c->text[c->len + 1] = (char)('0' + ms / 10 % 10);
        c->text[c->len + 2] = (char)('0' + ms % 10);
        c->milli = milli;
    }
    int n = c->len + 3;
    if (n <= 32)                        /* the usual 23 characters: one fixed-size copy */
        memcpy(out, c->text, 32);
    else
        memcpy(out, c->text, (size_t)n);
    return n;
}

int wppr_time_text(int64_t filetime, int utc, char *out)
{
    wppr_second_cache c = {.second = INT64_MIN, .utc = utc};
    return wppr_time_cached(&c, floor_div(filetime, TICKS_PER_SECOND / 1000), out);
}

int wppr_iso_second(int64_t second, char *out)
{
    struct tm tm;
    civil_from_unix(second - UNIX_EPOCH_SECOND, &tm);
    return snprintf(out, 32, "%04lld-%02d-%02dT%02d:%02d:%02d.", (long long)tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}
