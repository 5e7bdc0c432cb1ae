"""GUIDs on fmt's path without importing uuid until a UUID is made (``wpptrace._lazyuuid``):
the type tests, and the modules' GUID constants made on first use."""
from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from wpptrace import _lazyuuid
from wpptrace.decoder import records, wpp


class _Sub(uuid.UUID):
    pass


def test_type_tests_once_uuid_is_imported():
    guid = uuid.UUID(int=7)
    assert _lazyuuid.is_uuid(guid) and _lazyuuid.is_uuid(_Sub(int=7))
    assert not any(map(_lazyuuid.is_uuid, (None, str(guid), guid.bytes_le, 7)))
    assert _lazyuuid.uuid_type() is uuid.UUID


def test_type_tests_before_uuid_is_imported():
    code = ("import sys; from wpptrace import _lazyuuid as l\n"
            "kind = l.uuid_type()\n"
            "print('uuid' in sys.modules, l.is_uuid('68fdd900-4a3e-11d1-84f4-0000f80464e3'),"
            " kind.__name__, isinstance(object(), kind))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["False", "False", "_NotImported", "False"]


def test_guid_constants():
    assert records.EVENT_TRACE_GUID == uuid.UUID("68fdd900-4a3e-11d1-84f4-0000f80464e3")
    assert wpp.EVENT_TRACE_GUID is records.EVENT_TRACE_GUID
    assert records.KERNEL_GROUP_GUIDS[0x00] == records.EVENT_TRACE_GUID
    assert records.KERNEL_GROUP_GUIDS[0x14] == uuid.UUID("2cb15d1d-5fc1-11d2-abe1-00a0c911f518")
    assert all(type(g) is uuid.UUID for g in records.KERNEL_GROUP_GUIDS.values())
    from wpptrace.decoder.records import EVENT_TRACE_GUID

    assert EVENT_TRACE_GUID is records.EVENT_TRACE_GUID
    with pytest.raises(AttributeError):
        records.NO_SUCH_GUID
    with pytest.raises(AttributeError):
        wpp.NO_SUCH_GUID


@pytest.mark.parametrize("value", [0, 1, 0x68FDD9004A3E11D184F40000F80464E3, (1 << 128) - 1,
                                   0x0123456789ABCDEF0123456789ABCDEF, 1 << 127])
def test_guid_text_without_a_uuid(value):
    guid = uuid.UUID(int=value)
    assert _lazyuuid.text_of_int(value) == str(guid)
    assert _lazyuuid.text_of_le(guid.bytes_le) == str(guid)


def test_a_message_made_with_its_guid_bytes_reads_as_its_uuid():
    """A decoded message keeps its GUID's bytes until ``guid`` is read: the text is printed
    without a UUID, the field reads as the UUID (the same one for every message of a GUID),
    and fields, equality and repr are those of a message made with the UUID."""
    guid = uuid.UUID("2cb15d1d-5fc1-11d2-abe1-00a0c911f518")
    facts = dict(status="ok", number=3, filetime=None, time_text="", cpu=0, thread_id=1,
                 process_id=2, sequence=0, kernel_time=0, user_time=0, component="C", name="N",
                 source_file="", source_line="", function="", level="", flags="", text="t",
                 line="t")
    lazy = [wpp._with_guid_le(wpp.WppMessage(guid=None, **facts), guid.bytes_le) for _ in range(2)]
    made = wpp.WppMessage(guid=guid, **facts)
    assert [wpp.guid_text(m) for m in lazy] == [str(guid)] * 2
    assert "guid" not in vars(lazy[0])            # printing it made no UUID
    assert lazy[0] == made and repr(lazy[1]) == repr(made)
    assert lazy[0].guid == guid and lazy[0].guid is lazy[1].guid
    assert wpp.guid_text(made) == str(guid)
    assert wpp.guid_text(wpp.WppMessage(guid=None, **facts)) is None


def test_a_message_with_its_guid_bytes_pickles_and_answers_as_one_made_with_its_uuid():
    """A pickle holds the UUID (``guid``), as a message made with it does; a message with no
    GUID field answers hasattr/getattr with False/None, as before, not a KeyError."""
    import pickle

    guid = uuid.UUID("2cb15d1d-5fc1-11d2-abe1-00a0c911f518")
    facts = dict(status="ok", number=3, filetime=None, time_text="", cpu=0, thread_id=1,
                 process_id=2, sequence=0, kernel_time=0, user_time=0, component="C", name="N",
                 source_file="", source_line="", function="", level="", flags="", text="t",
                 line="t")
    lazy = wpp._with_guid_le(wpp.WppMessage(guid=None, **facts), guid.bytes_le)
    state = lazy.__getstate__()
    assert state["guid"] == guid and "_guid_le" not in state
    back = pickle.loads(pickle.dumps(lazy))
    assert back == wpp.WppMessage(guid=guid, **facts) and vars(back)["guid"] == guid
    bare = wpp.WppMessage.__new__(wpp.WppMessage)
    assert not hasattr(bare, "guid") and getattr(bare, "guid", None) is None
