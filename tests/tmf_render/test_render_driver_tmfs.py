"""Sweep over the real driver TMFs of the corpus (BthPS3, BthPS3PSM, DsHidMini, DMF; tracepdb
output): every message compiles and formats plausible argument bytes at pointer size 4 and 8,
one byte less is a FormatError; spot checks of real formats with their item types."""
from __future__ import annotations

import struct
import uuid

import pytest

from wpptrace.tmf import load
from wpptrace.tmf.itemtypes import ITEM_TYPES
from wpptrace.tmf.render import FormatError, compile_message, marker_defaults


@pytest.fixture(scope="module")
def driver_tmfs(corpus):
    return load(corpus / "tmf" / "nefarius__Nefarius.Utilities.ETW" / "tmf")


def _sample(item: str, ps: int, i: int) -> bytes:
    it = ITEM_TYPES[item]
    size = it.fixed_size(ps)
    if item == "ItemDouble":
        return struct.pack("<d", i / 4)
    if size is not None:
        return (i * 0x9E3779B97F4A7C15 & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
    text = f"dev{i}"
    if it.wire == "cstr":
        return text.encode() + b"\0"
    if it.wire == "wstr":
        return text.encode("utf-16-le") + b"\0\0"
    raw = text.encode("utf-16-le") if it.wire == "pwstr" else text.encode()
    return struct.pack("<H", len(raw)) + raw


def test_every_driver_message_formats(driver_tmfs):
    messages = list(driver_tmfs.messages())
    assert len(messages) == 2610
    with_args = 0
    for i, m in enumerate(messages):
        f = compile_message(m, driver_tmfs)
        for ps in (4, 8):
            data = b"".join(_sample(a.item, ps, i + k) for k, a in enumerate(m.args))
            text = f.format(data, ps, marker_defaults(m))
            if "%!FUNC!" in m.format:
                assert f"[{m.trailer['FUNC']}]" in text or m.trailer["FUNC"] in text
            if data:
                with pytest.raises(FormatError):
                    f.format(data[:-1], ps)
        with_args += bool(m.args)
    assert with_args > 1000


@pytest.mark.parametrize("guid,number,args,expected", [
    ("028f1450-e0d5-3b03-31cd-6226d77778f9", 17, struct.pack("<Q", 0x001A7DDA7113),
     " [L2CAP_PS3_HandleRemoteConnect]Device 001A7DDA7113 not identified or denied, dropping connection"),
    ("03fb1cb4-1c81-30e9-50db-4ecb4f47594e", 30, b"\x02",
     " [BthPS3PSM_EvtSaveConfigToRegistry] --> Entry <IRQL=0x00000002(DPC)"),
    ("10ab5e95-3a19-3bea-8e73-829a95a5dd10", 28, struct.pack("<I", 1168),
     " [DS3_GetActiveRadioAddress] ERROR:BluetoothGetRadioInfo failed with error 1168(ERROR_NOT_FOUND)"),
    ("13024be3-4b84-3755-d706-51020667de4f", 29, struct.pack("<dd", 1.5, -0.25),
     " [ConfigLoadForDevice]Heavy rumble rescaling constants:  A = 1.5 and B = -0.25."),
    ("03fb1cb4-1c81-30e9-50db-4ecb4f47594e", 27,
     struct.pack("<H", 20) + "\\??\\BTHPS3".encode("utf-16-le") + struct.pack("<I", 20),
     " [BthPS3PSM_SidebandIoDeviceControl]!! SymbolicLinkName: \\??\\BTHPS3 (length: 20)"),
])
def test_real_driver_formats(driver_tmfs, guid, number, args, expected):
    m = driver_tmfs.lookup(uuid.UUID(guid), number)
    f = compile_message(m, driver_tmfs)
    assert f.has_prefix
    assert f.format(args, 8) == expected
    assert f.format(args, 4) == expected  # no pointer-sized arguments in these


def test_against_nefarius_decoder_samples(driver_tmfs):
    """The corpus snapshots hold Nefarius.Utilities.ETW's decode of the real (non-public) captures.
    Its style differs from tracefmt (no leading space, status as ``NAME (0x...)``, ``0x`` added
    to %p), but the values and names must agree with ours."""
    # BthPS3_0_summary: "[BthPS3PSMEvtIoInternalDeviceControl]>> Bulk IN transfer (PipeHandle: 0xFFFF95820BE02120)"
    m = driver_tmfs.lookup(uuid.UUID("324ed36d-6949-3aa1-d581-3e2dc9652ec2"), 13)
    text = compile_message(m, driver_tmfs).format(struct.pack("<Q", 0xFFFF95820BE02120), 8)
    # tracefmt's %p has no 0x (findneedle: "ptr p=00007FF012345678"); the digits are the same
    assert text == " [BthPS3PSMEvtIoInternalDeviceControl]>> Bulk IN transfer (PipeHandle: FFFF95820BE02120)"
    # DsHidMini_summary: "[InitIPC] ERROR:WdfRegistryQueryULong failed with status STATUS_NO_SUCH_FILE (0xC000000F)"
    m = driver_tmfs.lookup(uuid.UUID("6827c296-b781-3084-bab0-678dd31e93ab"), 12)
    text = compile_message(m, driver_tmfs).format(struct.pack("<I", 0xC000000F), 8)
    assert text == " [InitIPC] ERROR:WdfRegistryQueryULong failed with status 0xc000000f(STATUS_NO_SUCH_FILE)"
