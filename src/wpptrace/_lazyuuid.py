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
