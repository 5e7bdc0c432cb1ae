/* counts.c: per-message counts added by place (counts.h). */
#include "counts.h"

int64_t counts_add_at(int64_t *totals, int64_t n, const int64_t *places, const int64_t *counts,
                      int64_t m)
{
    int64_t missed = 0;
    int64_t i;

    for (i = 0; i < m; i++) {
        int64_t place = places[i];
        if (place >= 0 && place < n)
            totals[place] += counts[i];
        else if (counts[i] != 0)
            missed++;
    }
    return missed;
}

void counts_add(int64_t *totals, const int64_t *more, int64_t n)
{
    int64_t i;

    for (i = 0; i < n; i++)
        totals[i] += more[i];
}
