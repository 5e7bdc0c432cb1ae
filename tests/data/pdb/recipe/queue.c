/*
 * wpptrace PDB fixture, module 2 of 3: a second message GUID (one per source file,
 * as tracewpp does), list and counted-string item types, and a force-inlined helper
 * whose annotation lands in an S_INLINESITE scope of each caller.
 */
typedef struct { unsigned short Length, MaximumLength; unsigned short *Buffer; } FIXTURE_UNICODE_STRING;

static __forceinline int queue_trace_depth(int depth)
{
    __annotation(L"TMF:",
                 L"a1b2c3d4-0000-4111-8222-933344445555 wppfixture // SRC=queue.c MJ= MN=",
                 L"#typev queue_c14 10 \"%0 [%!FUNC!] depth=%10!u!\" //   LEVEL=TRACE_LEVEL_VERBOSE FLAGS=TRACE_QUEUE",
                 L"{",
                 L"depth, ItemLong -- 10",
                 L"}");
    return depth + 1;
}

int Queue_Start(unsigned char irql, FIXTURE_UNICODE_STRING *link)
{
    __annotation(L"TMF:",
                 L"a1b2c3d4-0000-4111-8222-933344445555 wppfixture // SRC=queue.c MJ= MN=",
                 L"#typev queue_c26 11 \"%0 [%!FUNC!] IRQL=%10!s! link=%11!s!\" //   LEVEL=TRACE_LEVEL_INFORMATION FLAGS=TRACE_QUEUE",
                 L"{",
                 L"irql, ItemListByte(Low,APC,DPC) -- 10",
                 L"link, ItemPWString -- 11",
                 L"}");
    return queue_trace_depth(irql);
}

int Queue_Stop(int depth)
{
    return queue_trace_depth(depth);
}
