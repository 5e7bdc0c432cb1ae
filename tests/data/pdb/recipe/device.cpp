/*
 * wpptrace PDB fixture, module 3 of 3 (C++): procedure names in CodeView are
 * qualified but not decorated (drv::Dev::Init, drv::twice<int>).
 */
namespace drv {

struct Dev {
    int state;
    int Init(int flags);
};

int Dev::Init(int flags)
{
    __annotation(L"TMF:",
                 L"0c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f wppfixture // SRC=device.cpp MJ= MN=",
                 L"#typev device_cpp16 10 \"%0 [%!FUNC!] init flags=0x%10!08X!\" //   LEVEL=TRACE_LEVEL_INFORMATION FLAGS=TRACE_DEVICE",
                 L"{",
                 L"flags, ItemLong -- 10",
                 L"}");
    state = flags;
    return 0;
}

template <typename T> T twice(T v)
{
    __annotation(L"TMF:",
                 L"0c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f wppfixture // SRC=device.cpp MJ= MN=",
                 L"#typev device_cpp29 11 \"%0 [%!FUNC!] twice %10!I64d!\" //   LEVEL=TRACE_LEVEL_VERBOSE FLAGS=TRACE_DEVICE",
                 L"{",
                 L"(long long)v, ItemLongLong -- 10",
                 L"}");
    return v + v;
}

} // namespace drv

extern "C" int Device_Run(int x)
{
    drv::Dev d;
    d.Init(x);
    return drv::twice<int>(x) + (int)drv::twice<long long>(x);
}
