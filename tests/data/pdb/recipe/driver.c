/*
 * wpptrace PDB fixture, module 1 of 3: WPP-style __annotation records as a
 * tracewpp-generated .tmh would emit them (see tracemacro.tpl), in several kinds
 * of procedure scope.  No headers needed; built by build.sh with clang + lld-link.
 */

/* Control GUID record (TMC:), emitted where WPP_INIT_TRACING expands. */
int DriverEntry(void *driver, void *registry)
{
    __annotation(L"TMC:",
                 L"2f4b5c6d-7e8f-4a1b-9c2d-3e4f5a6b7c8d",
                 L"WppFixtureTraceGuid",
                 L"TRACE_DRIVER",
                 L"TRACE_QUEUE",
                 L"TRACE_DEVICE");
    __annotation(L"TMF:",
                 L"6f0e2a10-5b1c-4d2e-8f3a-9b4c5d6e7f80 wppfixture // SRC=driver.c MJ= MN=",
                 L"#typev driver_c20 10 \"%0 [%!FUNC!] --> Entry\" //   LEVEL=TRACE_LEVEL_VERBOSE FLAGS=TRACE_DRIVER",
                 L"{",
                 L"}");
    return driver == registry;
}

/* A message inside a nested lexical block (S_BLOCK32 inside S_GPROC32). */
int Fixture_Process(int count, const char *name)
{
    int total = 0;
    if (count > 0) {
        int doubled = count * 2;
        __annotation(L"TMF:",
                     L"6f0e2a10-5b1c-4d2e-8f3a-9b4c5d6e7f80 wppfixture // SRC=driver.c MJ= MN=",
                     L"#typev driver_c33 11 \"%0 [%!FUNC!] processing %10!d! items for %11!s!\" //   LEVEL=TRACE_LEVEL_INFORMATION FLAGS=TRACE_QUEUE",
                     L"{",
                     L"doubled, ItemLong -- 10",
                     L"name, ItemString -- 11",
                     L"}");
        total = doubled;
    }
    return total;
}

/* A static function (S_LPROC32); non-ASCII text (clang stores it as UTF-8). */
static int fixture_helper(int status)
{
    __annotation(L"TMF:",
                 L"6f0e2a10-5b1c-4d2e-8f3a-9b4c5d6e7f80 wppfixture // SRC=driver.c MJ= MN=",
                 L"#typev driver_c48 12 \"%0 [%!FUNC!] caf\u00e9 failed with %10!s!\" //   LEVEL=TRACE_LEVEL_ERROR FLAGS=TRACE_DRIVER",
                 L"{",
                 L"status, ItemNTSTATUS -- 10",
                 L"}");
    return status;
}

/* WPP_EMIT_FUNC_NAME style: FUNC= is already in the record, so nothing is appended.
 * The format also holds raw quotes and a "//" that is not the trailer. */
int Fixture_Emit(int value)
{
    __annotation(L"TMF:",
                 L"6f0e2a10-5b1c-4d2e-8f3a-9b4c5d6e7f80 wppfixture // SRC=driver.c MJ= MN=",
                 L"#typev driver_c60 13 \"%0 say \"hi\" // x=%10!x!\" //   LEVEL=TRACE_LEVEL_WARNING FLAGS=TRACE_DRIVER FUNC=Fixture_Emit_Custom",
                 L"{",
                 L"value, ItemLong -- 10",
                 L"}");
    return fixture_helper(value);
}

/* A public message (PUBLIC_FILTER): hidden file name, Arg expressions, PUBLIC_TMF: tail;
 * and an __annotation that is not WPP at all (counted, ignored). */
void Fixture_Public(int code)
{
    __annotation(L"TMF:",
                 L"6f0e2a10-5b1c-4d2e-8f3a-9b4c5d6e7f80 wppfixture // SRC=Unknown_cxx00 MJ= MN=",
                 L"#typev Unknown_cxx00 14 \"%0code %10!d!\" //   LEVEL=TRACE_LEVEL_INFORMATION FLAGS=TRACE_DEVICE",
                 L"{",
                 L"Arg, ItemLong -- 10",
                 L"}",
                 L"PUBLIC_TMF:");
    __annotation(L"Debug", L"not a trace message");
    (void)code;
}

/* ItemEnum / ItemFlagsEnum arguments: tracepdb appends "#enumv" blocks with the values of
 * these C enums, read from the PDB's type stream. */
enum _FixtureState { StateOff = 0, StateOn = 1, StateBig = 0x90000000u, StateNeg = -2 };
enum _FixtureFlags { FlagRead = 1, FlagWrite = 2, FlagExec = 4 };

int Fixture_State(enum _FixtureState state, enum _FixtureFlags flags)
{
    __annotation(L"TMF:",
                 L"6f0e2a10-5b1c-4d2e-8f3a-9b4c5d6e7f80 wppfixture // SRC=driver.c MJ= MN=",
                 L"#typev driver_c92 15 \"%0 [%!FUNC!] state=%10!s! flags=%11!s!\" //   LEVEL=TRACE_LEVEL_INFORMATION FLAGS=TRACE_DEVICE",
                 L"{",
                 L"state, ItemEnum(_FixtureState) -- 10",
                 L"flags, ItemFlagsEnum(_FixtureFlags) -- 11",
                 L"}");
    return (int)state + (int)flags;
}
