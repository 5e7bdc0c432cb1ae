/* tagged_messages.h: the messages the core's stress programs (core_faults.c, core_races.c) log
 * on their session g_session: message `tag` of g_msg, {tag, i} as its arguments, g_logged
 * counting those the core took (the test builder puts this folder on their include path).
 * Include after wpptrace_etw.h or _etw_internal.h. */
#ifndef WPPTRACE_TESTS_TAGGED_MESSAGES_H
#define WPPTRACE_TESTS_TAGGED_MESSAGES_H

static TRACEHANDLE g_session;
static GUID g_msg = {0x0badcafe, 0x1, 0x2, {3, 4, 5, 6, 7, 8, 9, 10}};
static unsigned long g_logged;

static inline void log_one(unsigned tag, unsigned i) {
    unsigned v[2] = {tag, i};
    if (TraceMessage(g_session, 0x2B, &g_msg, (USHORT)tag, v, sizeof v, NULL) == 0)
        __atomic_add_fetch(&g_logged, 1, __ATOMIC_RELAXED);
}

#endif
