"""Compiled message programs shared by the processes of one ``fmt -j`` run.

Every process of a run needs the C program of each message its window prints. Compiling a
message (its TMF entry read, its formatter and program made) costs tens of microseconds and a
driver trace uses thousands of messages, so every process compiling all of them is a fixed
cost that ``-j`` cannot divide. With a ``ProgramShare`` made before the workers are forked,
the first process that needs a message compiles it and publishes a record of it (program
blob, decoration, what printing and counting its rows needs); the others install that
record. A message only Python prints, a record that finds no room, and one that does not come
in time are compiled by each process itself, as without sharing: the output is the same
either way.

The first windows of a run meet most of its messages at once, and the messages of one TMF
file are spread over all of them: first come, first compiled, every process would read
nearly every TMF file. So the processes first meet (``share_out``): each posts the messages
its first window needs compiled, and once all have, each compiles the messages of its share
of the TMF GUIDs, whoever needs them; one done with its share takes what is left of the
others' from their ends. A process that does not post in time ends the meeting for all:
then first come, first compiled.

Messages first met after the first windows are compiled by whichever process meets one
first, which reads its TMF file if it has not: the others' share of the GUIDs, most often
(splitting a file in C costs less than taking it from another process would).

A record: ``RECORD`` (the printer's form, flags, the shared prefix program the blob calls,
five lengths) then component, name and Unknown line (UTF-8), program blob and decoration.
"""
from __future__ import annotations

import struct
import time
from collections import namedtuple

from ._hazmat import ETL, ProgramTable

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ProgramShare", "SharedRecord", "pack", "pack_parts", "shares_of", "unpack"]

#: a record's head, as program_records.h lays it out (PRECORD_HEAD bytes) for the C install
RECORD = struct.Struct("<4sIiIIIII")
_HAS_PREFIX, _UNKNOWN, _DECORATED = ETL.PRECORD_HAS_PREFIX, ETL.PRECORD_UNKNOWN, ETL.PRECORD_DECORATED
_FORMS = ("text", "csv", "jsonl")
#: how long a process waits for a message another one is compiling before compiling it itself
WAIT_SECONDS = 1.0
#: how long a process waits for the others to post their first messages (they start together),
#: at least: a quarter of the time it took to come, if longer (a slow machine, or a process run
#: under a profiler, is slow in every process)
MEET_SECONDS = 0.005
#: what reading a TMF file costs, in messages compiled: how the shares are weighed. Measured
#: with benchmarks/bench_compile.py --callgrind over its 89 corpus files: a file read and split
#: (scan) 0.29 M instructions, a message compiled and published (publish less scan) 0.12 M
_FILE_WEIGHT = 2


#: What another process published of a message: component, name, has_prefix, unknown (its
#: Unknown line, or None), prefix_program (the shared prefix program the blob calls, -1 for
#: none), blob, decoration (or None). A named tuple: one is made per message installed.
SharedRecord = namedtuple("SharedRecord", "component name has_prefix unknown prefix_program blob decoration")


class ProgramShare:
    """The shared table of one run (made before the fork; ``close`` in every process when
    done). ``compiled`` / ``installed``: messages this process claimed and compiled / printed
    from another one's record (the decoder counts those)."""

    def __init__(self, slots: int = 1 << 15, arena: int = 64 << 20, processes: int = 1,
                 steal: bool = True) -> None:
        self.table = ProgramTable(slots, arena)
        self.compiled = self.installed = 0
        #: this process's number in the run (0: the one that made the table; ``join``) and
        #: how many processes meet over their first messages (``share_out``; 1: no meeting)
        self.process, self.processes = 0, processes
        self.met = False
        self.made = time.monotonic()
        #: whether a process done with its share takes what the others have not begun of theirs
        self.steal = steal

    def join(self, process: int) -> None:
        """This process takes part in the run as number ``process`` (a forked worker, before
        its first message; it has not met the others yet)."""
        self.process, self.met = process, False

    def share_out(self, keys: list[tuple[bytes, int]], meanwhile: Callable[[], None] | None = None
                  ) -> list[list[tuple[bytes, int]]] | None:
        """This process's part of the meeting (once; see the module's docstring): ``keys``
        are the messages its first window needs compiled (GUID bytes_le, number). Returns
        the messages each process compiles for all (``shares_of``; this one's at
        ``self.process``), or None when there is no meeting (one process, a meeting held
        before, or one that a process did not come to in time). ``meanwhile`` is called once
        if the others have not all posted when this process has: work it would do after the
        meeting anyway, done while it waits."""
        table = self.table
        if self.met:
            return None
        self.met = True
        if self.processes < 2 or self.processes > table.POSTERS:
            return None
        if not table.post(self.process, keys):
            table.meet(table.ABANDONED)
            return None
        if not keys:                          # nothing to compile here: no share to take
            return None
        posted = [k == self.process for k in range(self.processes)]
        deadline = None
        pause = 0.0
        while True:
            for k in range(self.processes):
                if not posted[k]:
                    posted[k] = table.has_posted(k)
            if all(posted):
                if table.meet(table.AGREED) != table.AGREED:
                    return None
                break
            if meanwhile is not None:
                meanwhile, done = None, meanwhile
                try:
                    done()
                except Exception:  # noqa: BLE001  (work done ahead: its own path meets it again)
                    pass
                continue                      # (the others may have come meanwhile)
            now = time.monotonic()
            if deadline is None:
                deadline = now + max(MEET_SECONDS, (now - self.made) / 4)
            elif now >= deadline:
                if table.meet(table.ABANDONED) == table.ABANDONED:
                    return None
                break                         # all came: agreed
            time.sleep(pause)
            pause = min(0.0005, pause + 0.0001)
        # shares_of's, made in C from the posts in the table
        return table.shares(self.processes, _FILE_WEIGHT)

    def await_ready(self, keys: list[tuple[bytes, int]], seconds: float | None = None) -> None:
        """Wait until the records of ``keys`` (the other processes' shares) are READY, or
        ``seconds`` (WAIT_SECONDS) have passed (those left are then claimed as any other
        message)."""
        table = self.table
        left = keys
        deadline = time.monotonic() + (WAIT_SECONDS if seconds is None else seconds)
        pause = 0.0
        while left:
            slots = table.ready(left)
            left = [key for key, slot in zip(left, slots) if slot < 0]
            if not left or time.monotonic() >= deadline:
                return
            time.sleep(pause)                 # 0 first: yield to the processes compiling them
            pause = min(0.001, pause + 0.0001)

    @staticmethod
    def mode(printer_mode: tuple) -> bytes | None:
        """The record tag of a printer mode (noprefix, form, quote_all); None for a form that
        is not shared."""
        noprefix, form, quote_all = printer_mode
        if form not in _FORMS:
            return None
        return bytes((_FORMS.index(form) + 1, bool(noprefix), bool(quote_all), 0))

    def claim(self, guid_le: bytes, number: int) -> tuple[int, int]:
        """(slot, state): ``ProgramTable.MINE`` -> compile it, then ``publish`` or ``refuse``."""
        return self.table.claim(guid_le, number)

    def publish(self, slot: int, mode: bytes, record: SharedRecord) -> None:
        self.compiled += 1
        if record.blob is None:
            self.table.refuse(slot)
            return
        self.table.publish(slot, pack(mode, record))

    def refuse(self, slot: int) -> None:
        self.compiled += 1
        self.table.refuse(slot)

    def settle(self, slot: int, seconds: float | None = None) -> int:
        """The state of a slot another process claimed once it is no longer CLAIMED (READY:
        its record can be read), or CLAIMED still after ``seconds`` (WAIT_SECONDS)."""
        table = self.table
        state = table.state(slot)
        if state == table.CLAIMED:
            deadline = time.monotonic() + (WAIT_SECONDS if seconds is None else seconds)
            pause = 0.0
            while state == table.CLAIMED and time.monotonic() < deadline:
                time.sleep(pause)                 # 0 first: yield to the process compiling it
                pause = min(0.001, pause + 0.0001)
                state = table.state(slot)
        return state

    def wait(self, slot: int, mode: bytes, seconds: float | None = None) -> SharedRecord | None:
        """The record of a slot another process claimed, once published; None when it was
        refused, does not come within ``seconds``, or is not for this mode."""
        table = self.table
        data = table.record(slot)             # published already: most often
        if data is not None:
            return unpack(data, mode)
        if self.settle(slot, seconds) != table.READY:
            return None
        return unpack(table.record(slot), mode)

    def close(self) -> None:
        self.table.close()


def shares_of(posts: list[list[tuple[bytes, int]]]) -> list[list[tuple[bytes, int]]]:
    """The messages each process compiles of all the processes' posted ones (``posts[k]``:
    process k's): whole GUIDs (a TMF file read once), the heaviest first to the least
    loaded of the processes that posted some, each share in GUID order: what every process
    computes alike from the same posts. A run's processes make them in C from the posts in
    the table (``ProgramTable.shares``, ``pshare_shares``: 1.5 M instructions against 6.1 M
    for this and the posts read into Python, for two posts of about 970 keys): this is
    what those are checked against."""
    numbers: dict[bytes, set[int]] = {}
    for posted in posts:
        for guid, number in posted:
            numbers.setdefault(guid, set()).add(number)
    weight = {guid: len(found) + _FILE_WEIGHT for guid, found in numbers.items()}
    loads = {k: 0 for k, posted in enumerate(posts) if posted}   # (one that posted none left)
    guids: list[list[bytes]] = [[] for _ in posts]
    for guid in sorted(numbers, key=lambda guid: (-weight[guid], guid)):
        least = min(loads, key=lambda k: (loads[k], k))
        loads[least] += weight[guid]
        guids[least].append(guid)
    return [[(guid, number) for guid in sorted(share) for number in sorted(numbers[guid])]
            for share in guids]


def pack(mode: bytes, record: SharedRecord) -> bytes:
    """A record's bytes (``record.blob`` set), as ``unpack`` reads them."""
    return pack_parts(mode, *record)


def pack_parts(mode: bytes, component: str, name: str, has_prefix: bool, unknown: str | None,
               prefix_program: int, blob: bytes, decoration: bytes | None) -> bytes:
    """``pack`` of a record's fields, no ``SharedRecord`` made (one per message compiled)."""
    component_b, name_b = component.encode(), name.encode()
    if unknown is None:
        unknown_b, flags = b"", _HAS_PREFIX if has_prefix else 0
    else:
        unknown_b, flags = unknown.encode(), (_HAS_PREFIX if has_prefix else 0) | _UNKNOWN
    if decoration is None:
        decoration = b""
    else:
        flags |= _DECORATED
    return b"".join((RECORD.pack(mode, flags, prefix_program, len(component_b), len(name_b),
                                 len(unknown_b), len(blob), len(decoration)),
                     component_b, name_b, unknown_b, blob, decoration))


def unpack(data: bytes | None, mode: bytes) -> SharedRecord | None:
    """A record's fields; None when it is not whole or was made for another mode."""
    if data is None or len(data) < RECORD.size:
        return None
    made_for, flags, prefix_program, components, names, unknowns, blobs, decorations = \
        RECORD.unpack_from(data)
    name_at = RECORD.size + components
    unknown_at = name_at + names
    blob_at = unknown_at + unknowns
    decoration_at = blob_at + blobs
    if made_for != mode or decoration_at + decorations != len(data):
        return None
    try:   # tuple.__new__: the named tuple's own __new__ is Python code (one is made per message)
        return _new(SharedRecord, (data[RECORD.size:name_at].decode(), data[name_at:unknown_at].decode(),
                                   bool(flags & _HAS_PREFIX),
                                   data[unknown_at:blob_at].decode() if flags & _UNKNOWN else None,
                                   prefix_program, data[blob_at:decoration_at],
                                   data[decoration_at:] if flags & _DECORATED else None))
    except UnicodeDecodeError:
        return None


_new = tuple.__new__
