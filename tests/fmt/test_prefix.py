"""Prefix templates: every variable %1..%9, WPP markers, timestamp text, TRACE_FORMAT_PREFIX."""
from __future__ import annotations

import os
import time
import uuid

import pytest

from wpptrace.decoder.prefix import (
    DEFAULT_PREFIX, SEQUENCE_PREFIX, PrefixTemplate, TimestampText, filetime_to_text, marker_values,
    prefix_from_environment)
from wpptrace.tmf.model import Message

FT_2020 = 132321950169170000  # 2020-04-24 09:43:36.917 UTC as FILETIME
VALUES = (0x0CF0, "04/24/2020-09:43:36.917", 12, 34, 7, 0x0EF8, 3)  # tid, time, kt, ut, seq, pid, cpu


def message(**kw):
    base = dict(guid=uuid.UUID("37753236-c81f-505e-d40a-128d3bb2b5ff"), number=10,
                name="tracedrv_c258", format="%0IOCTL = %10!d!",
                trailer={"LEVEL": "TRACE_LEVEL_INFORMATION", "FLAGS": "TRACE_DRV",
                         "FUNC": "TracedrvDispatchDeviceControl"},
                component="tracedrv", source_file="tracedrv.c")
    base.update(kw)
    return Message(**base)


def test_default_prefix_matches_documented_line():
    bound = PrefixTemplate(DEFAULT_PREFIX).bind("cx", "x_c1", {})
    assert bound.render(VALUES) == "[3]0EF8.0CF0::04/24/2020-09:43:36.917 [cx]"
    assert bound.needs_time


def test_every_variable():
    text = "1=%1!s! 2=%2!s! 3=%3!04X! 4=%4!s! 5=%5!d! 6=%6!d! 7=%7!08x! 8=%8!04X! 9=%9!d!"
    bound = PrefixTemplate(text).bind("comp", "name_c9", {})
    assert bound.render(VALUES) == (
        "1=comp 2=name_c9 3=0CF0 4=04/24/2020-09:43:36.917 5=12 6=34 7=00000007 8=0EF8 9=3")


def test_documented_custom_prefix_with_markers():
    # docs example 7: TRACE_FORMAT_PREFIX=%2!s!: %!FUNC!: %8!04x!.%3!04x!: %4!s!:
    m = message()
    bound = PrefixTemplate("%2!s!: %!FUNC!: %8!04x!.%3!04x!: %4!s!:").bind(
        m.component, m.name, marker_values(m))
    values = (0x0C64, "07/25/2003-13:55:39.998", 0, 0, 0, 0x0AF4, 0)
    assert bound.render(values) + "  IOCTL = 1" == (
        "tracedrv_c258: TracedrvDispatchDeviceControl: 0af4.0c64: 07/25/2003-13:55:39.998:  IOCTL = 1")


def test_markers_from_trailer_and_message():
    m = message(name="Device_c104", trailer={"TRACELEVEL": "TRACE_LEVEL_WARNING", "FUNC": "f"})
    markers = marker_values(m)
    assert markers["LEVEL"] == "TRACE_LEVEL_WARNING"  # legacy substring match on LEVEL=
    assert markers["TRACELEVEL"] == "TRACE_LEVEL_WARNING"
    assert markers["FUNC"] == "f"
    assert markers["FLAGS"] == ""
    assert markers["COMPNAME"] == "tracedrv"
    assert markers["FILE"] == "tracedrv.c"
    assert markers["LINE"] == "104"
    bound = PrefixTemplate("%!COMPNAME!|%!LEVEL!|%!FILE!:%!LINE!|%!FUNC!|%!NOPE!|").bind(
        m.component, m.name, markers)
    assert bound.render(VALUES) == "tracedrv|TRACE_LEVEL_WARNING|tracedrv.c:104|f|%!NOPE!|"
    assert bound.static is not None and not bound.needs_time


def test_sequence_prefix_and_escapes():
    bound = PrefixTemplate(SEQUENCE_PREFIX).bind("c", "n", {})
    assert bound.render(VALUES) == "[3]0EF8.0CF0::04/24/2020-09:43:36.917 00000007 [c]"
    assert PrefixTemplate("100%% %1!s!%0 ignored").bind("a%b", "n", {}).render(VALUES) == "100% a%b"


def test_bad_prefix_raises_with_column():
    with pytest.raises(ValueError) as info:
        PrefixTemplate("[%9!d]")
    assert getattr(info.value, "column", None) == 4 and "expected" in str(info.value)


def test_timestamp_text_utc_and_cache():
    tt = TimestampText(utc=True)
    assert tt(FT_2020) == "04/24/2020-09:43:36.917"
    assert tt(FT_2020 + 1_000) == "04/24/2020-09:43:36.917"  # 100 us later: same ms
    assert tt(FT_2020 + 830_000) == "04/24/2020-09:43:37.000"  # next second
    assert filetime_to_text(0, utc=True) == "01/01/1601-00:00:00.000"


def test_timestamp_text_local_time(monkeypatch):
    monkeypatch.setenv("TZ", "PST8PDT,M3.2.0,M11.1.0")
    time.tzset()
    try:
        assert TimestampText()(FT_2020) == "04/24/2020-02:43:36.917"  # PDT = UTC-7
        assert TimestampText(utc=True)(FT_2020) == "04/24/2020-09:43:36.917"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_prefix_from_environment():
    assert prefix_from_environment({}) is None
    assert prefix_from_environment({"TRACE_FORMAT_PREFIX": "%2!s!:"}) == "%2!s!:"
    assert os.environ.get("TRACE_FORMAT_PREFIX") == prefix_from_environment()


def test_standard_markers_missing_from_a_message_print_empty():
    bound = PrefixTemplate("<%!FUNC!|%!FLAGS!|%!SUBCOMP!|%!CUSTOM!>").bind("Header", "Header", {})
    assert bound.render(VALUES) == "<|||%!CUSTOM!>"
