"""``uuid`` left unimported until a UUID is made: importing it imports ``platform`` (10 M
instructions, about 2 ms of every ``wpptrace fmt`` start-up), and a run whose messages all come
from fmt's program cache makes none. Tests of a value's type need no import: no UUID exists
before ``uuid`` is imported."""
from __future__ import annotations

import sys


class _NotImported:
    """Stands for ``uuid.UUID`` while ``uuid`` is not imported: no value is one."""


def is_uuid(value: object) -> bool:
    """``isinstance(value, uuid.UUID)``."""
    module = sys.modules.get("uuid")
    return module is not None and isinstance(value, module.UUID)


def uuid_type() -> type:
    """``uuid.UUID``, or a class no value belongs to while ``uuid`` is not imported: for
    ``type(value) is`` tests over values that exist already, taken once before the loop."""
    module = sys.modules.get("uuid")
    return _NotImported if module is None else module.UUID


def uuid_of_int(value: int):
    """``uuid.UUID(int=value)`` (``uuid`` imported on the first call)."""
    import uuid

    return uuid.UUID(int=value)


def int_of_le(guid_le: bytes) -> int:
    """The 128-bit int of a GUID given as its bytes_le (``UUID(bytes_le=guid_le).int``)."""
    return int.from_bytes(guid_le[3::-1] + guid_le[5:3:-1] + guid_le[7:5:-1] + guid_le[8:], "big")


class GuidFromInt:
    """The ``guid`` field of a frozen field class whose objects the TMF reader makes with the
    GUID's 128-bit int (``_guid_int``) in place of a UUID: the ``uuid.UUID`` is made the first
    time the field is read, then kept on the object. Objects made with a UUID hold it as
    any field (this non-data descriptor is only reached when the object has no ``guid``)."""

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        guid = obj.__dict__["guid"] = uuid_of_int(obj.__dict__["_guid_int"])
        return guid


def guid_int(obj) -> int:
    """The 128-bit int of ``obj.guid`` (a field class using ``GuidFromInt``), no UUID made."""
    held = obj.__dict__
    guid = held.get("guid")
    return held["_guid_int"] if guid is None else guid.int


def le_of_int(value: int) -> bytes:
    """The bytes_le of a GUID given as its 128-bit int (``UUID(int=value).bytes_le``)."""
    big = value.to_bytes(16, "big")
    return big[3::-1] + big[5:3:-1] + big[7:5:-1] + big[8:]


def text_of_int(value: int) -> str:
    """``str(uuid.UUID(int=value))``: the GUID's text, no UUID made."""
    h = "%032x" % value
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def text_of_le(guid_le: bytes) -> str:
    """``str(uuid.UUID(bytes_le=guid_le))``: the text of a GUID given as its bytes_le."""
    return text_of_int(int_of_le(guid_le))

