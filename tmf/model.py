"""The TMF data model: messages, arguments, enum definitions, control GUIDs and the loaded set.

Frozen field classes shared by the grammar, the loaders (TMF text, .tmc, PDB), the writer and
the decoder. ``TmfSet`` keys messages by (message GUID, message number) and can defer reading
files until a GUID is first looked up (see ``wpptrace.tmf.loader``).
"""
from __future__ import annotations

import heapq
from itertools import repeat
from operator import itemgetter
from wpptrace._fieldclass import field, fieldclass
from wpptrace._lazyuuid import GuidFromInt, guid_int, is_uuid

from .errors import TmfError

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    import uuid
    from typing import Callable, Iterable, Iterator, Protocol
else:
    Protocol = object   # DeferredEntries documents an interface: only type checkers check it

__all__ = ["Argument", "Message", "EnumDef", "ControlGuid", "TmfSet", "make_argument",
           "make_message", "MAX_ISSUES_PER_FILE"]

#: problems kept per file (``TmfSet.issues``): the first ones in the file, by line and column;
#: further ones are only counted (``TmfSet.issues_dropped``): a file of a million bad lines
#: would otherwise hold a TmfError, with its excerpt, per line
MAX_ISSUES_PER_FILE = 10_000


@fieldclass(frozen=True)
class Argument:
    """One argument line: ``<name>, <item>[(<params>)] -- <insert>``."""

    name: str  # the C expression as written (may contain commas, quotes, casts)
    item: str  # "ItemLong", "ItemListByte", "ItemEnum", ... (unknown names are kept as written)
    params: tuple[str, ...] = ()  # ("Low", "APC", "DPC") for lists/sets, ("_MyEnum",) for ItemEnum
    insert: int = 10  # FormatMessage insert number: %10 is the first argument


@fieldclass(frozen=True)
class Message:
    """One ``#typev`` entry: the format of (guid, number)."""

    guid: uuid.UUID
    number: int
    name: str  # message name token, e.g. "L2CAP_c141" (prefix variable %2)
    format: str  # format string exactly as between the quotes (not escaped)
    args: tuple[Argument, ...] = ()
    trailer: dict[str, str] = field(default_factory=dict, hash=False)  # LEVEL, FLAGS, FUNC, ... in file order
    component: str = ""  # from the GUID header line (prefix variable %1)
    source_file: str = ""  # SRC= of the GUID header line
    origin: str = ""  # "path:line" of the #typev line
    legacy: bool = False  # written as "#type" (old style) rather than "#typev"

    @property
    def level(self) -> str | None:
        return self.trailer.get("LEVEL")

    @property
    def flags(self) -> str | None:
        return self.trailer.get("FLAGS")

    @property
    def func(self) -> str | None:
        return self.trailer.get("FUNC")


# the TMF reader's messages hold their GUID as an int until it is read (``make_message``)
Message.guid = GuidFromInt()


def make_argument(name: str, item: str, params: tuple[str, ...], insert: int) -> Argument:
    """``Argument(name, item, params, insert)`` without the frozen class's per-field
    ``object.__setattr__`` (a TMF directory has thousands: the reader's hot spot)."""
    arg = object.__new__(Argument)
    arg.__dict__.update(name=name, item=item, params=params, insert=insert)
    return arg


def make_message(guid: uuid.UUID | int, number: int, name: str, format: str,
                 args: tuple[Argument, ...], trailer: dict[str, str], component: str,
                 source_file: str, origin: str, legacy: bool) -> Message:
    """``Message(...)`` with every field given, built as ``make_argument`` builds arguments.
    ``guid`` may be the GUID's 128-bit int: its UUID is made when first read (a run that
    reads none does not import ``uuid``: ``wpptrace._lazyuuid``)."""
    message = object.__new__(Message)
    message.__dict__.update(number=number, name=name, format=format, args=args,
                            trailer=trailer, component=component, source_file=source_file,
                            origin=origin, legacy=legacy)
    message.__dict__["_guid_int" if type(guid) is int else "guid"] = guid
    return message


@fieldclass(frozen=True)
class EnumDef:
    """An ``#enumv`` block: enumerator values of a C enum used by ItemEnum/ItemFlagsEnum."""

    name: str
    # value -> enumerator name (first name of an aliased value). Values are as written; a 64-bit
    # %I64X value >= 2**63 (sign-extended) is stored negative: mask to the wire width to look up.
    values: dict[int, str] = field(default_factory=dict, hash=False)
    is_bitmask: bool = False  # TMF does not say; set by callers that know (ItemFlagsEnum)
    origin: str = ""


@fieldclass(frozen=True)
class ControlGuid:
    """A control GUID with its flag names, from a ``.tmc`` file or a PDB ``TMC:`` annotation."""

    guid: uuid.UUID
    name: str
    flags: tuple[str, ...] = ()  # flag names in bit order: flags[0] is bit 0 (value 1)
    origin: str = ""


class DeferredEntries(Protocol):
    """Message entries read one after the other and not parsed yet (``TmfSet.defer_run``)."""

    def messages(self, i: int, tmfset: "TmfSet") -> list[Message]:
        """The messages of the i-th entry (problems go to ``tmfset``)."""


class TmfSet:
    """A collection of TMF messages keyed by (message GUID, number).

    ``issues`` lists the entries skipped in tolerant mode (``TmfError`` objects with their
    position). Duplicate (guid, number) entries, as left by tracepdb appending to a file twice,
    are allowed: the one with the highest ``add_message`` priority wins, of equal ones the first
    in the file (tracepdb also repeats a message once per enclosing procedure, e.g. a ``fin$0``
    funclet after the real function). The loader ranks sources and the files of a directory
    (``loader.file_priority``), so the winner depends on the files, never on which was read
    first; a key whose entries come with several formats is reported once (``issues``), on a
    full listing. Sources registered with ``add_pending`` are parsed the first time one of their
    GUIDs is needed (a file named for no GUID: on the first lookup it may change);
    ``messages()``/``guids()``/``len()`` load everything.
    """

    def __init__(self) -> None:
        # The private tables key a GUID by its ``int``: a UUID hashes in Python code, which cost
        # tens of thousands of calls per decoding run's lookups.
        self._messages: dict[tuple[int, int], Message] = {}
        # Source precedence per key (higher wins; equal: the first one read stays).
        self._priority: dict[tuple[int, int], int] = {}
        self._enums: dict[str, EnumDef] = {}
        self._components: dict[int, tuple[int, str]] = {}  # GUID -> (priority, component)
        self.control_guids: list[ControlGuid] = []
        # the problems kept (``issues``), by the order they were met in
        self._kept: dict[int, TmfError] = {}
        self._met = 0
        # per file path: the kept problems' places as (-line, -column, -order met), a heap whose
        # first is the one to let go for a problem before it in the file
        self._kept_places: dict[str, list[tuple[int, int, int]]] = {}
        # per file path and parse unit (0: the file as read; N: the message entry at line N,
        # parsed when looked up): the problems met, kept or not. A unit parses the same in
        # every process reading it, so processes that each parsed a part of a file sum their
        # units' counts, each unit once (``decoder.wpp``)
        self.issue_counts: dict[str, dict[int, int]] = {}
        # the files the set was listed from (TMF, TMC, PDB), in the order they take precedence:
        # what a record compiled from it depends on (decoder.program_cache)
        self.inputs: list[str] = []
        # GUID -> loaders that will add that GUID's messages when first needed.
        self._pending: dict[int, list[Callable[["TmfSet"], None]]] = {}
        # Loaders whose GUIDs are unknown until read (needed by messages()/guids()/enum()),
        # and the highest priority among them: a message found at a lower one may be outranked
        # by one of theirs, so a lookup reads them first
        self._pending_any: list[Callable[["TmfSet"], None]] = []
        self._pending_any_top: float = float("-inf")
        # keys whose duplicates came with other formats: the formats (every one of the key's,
        # whatever the order its entries were read in); reported once each, on a full listing
        self._formats: dict[tuple[int, int], set[str]] = {}
        self._conflicts: set[tuple[int, int]] = set()
        # message entries read but not parsed yet: GUID -> number -> its (noted, entries, index,
        # priority) (``defer_run``) or (noted, entry, None, priority) (``defer``), in reading
        # order; ``noted`` counts the notes, so that (noted, index) orders the keys as read
        self._deferred: dict[int, dict[int, list[tuple[int, object, int | None, int]]]] = {}
        self._noted = 0
        # deferred entries a lookup did not need (an earlier one of the same key won), parsed
        # by a full listing for the problems they may report
        self._outranked: list = []

    # -- building -------------------------------------------------------------------------
    def add_message(self, message: Message, priority: int = 0) -> None:
        """Add ``message`` unless its (guid, number) is already known at the same or a higher
        priority; one of the two with another format is reported (once per key)."""
        guid = guid_int(message)
        key = (guid, message.number)
        kept = self._messages.get(key)
        if kept is not None and kept.format != message.format:
            self._formats.setdefault(key, set()).update((kept.format, message.format))
        if kept is None or priority > self._priority[key]:
            self._messages[key] = message
            self._priority[key] = priority
            known = self._components.get(guid)
            if known is None or priority > known[0]:
                self._components[guid] = (priority, message.component)

    def _report_conflicts(self) -> None:
        """Report each key whose entries came with several formats, once, at the one used
        (when everything is parsed: what is reported does not depend on the order)."""
        for key in sorted(self._formats.keys() - self._conflicts):
            self._conflicts.add(key)
            used = self._messages[key]
            path, _, line = used.origin.rpartition(":")
            line = int(line) if line.isdigit() else 0
            self.add_issue(TmfError(
                f"message {used.guid} number {key[1]} has {len(self._formats[key])} different "
                f"formats in its sources; this one is used", path=path if line else used.origin,
                line=line, column=1, expected="one format for each GUID and message number"), unit=line)

    def defer(self, guid: uuid.UUID | int, numbers: Iterable[int], entry, priority: int = 0) -> None:
        """Note an unparsed message entry defining ``numbers`` of ``guid``: ``entry.messages(self)``
        parses it (once) when one of them is looked up. For each key, the entries are added in
        the order they were noted, as if they had been parsed then."""
        by_number = self._deferred.setdefault(_int(guid), {})
        for number in numbers:
            self._noted += 1   # a note per number: they are ordered as noted
            by_number.setdefault(number, []).append((self._noted, entry, None, priority))

    def defer_run(self, guid: uuid.UUID | int, numbers: list[int], entries: DeferredEntries,
                  priority: int = 0) -> None:
        """Note unparsed message entries of ``guid`` read one after the other, as ``defer``
        notes one: the i-th defines message ``numbers[i]``; ``entries.messages(i, self)``
        parses it when its number is looked up (or on a full listing), once."""
        self._noted += 1
        by_number = self._deferred.setdefault(_int(guid), {})
        found = zip(repeat(self._noted), repeat(entries), range(len(numbers)), repeat(priority))
        if len(set(numbers)) == len(numbers) and by_number.keys().isdisjoint(numbers):
            by_number.update(zip(numbers, map(list, zip(found))))   # each number once, and new
            return
        for number, each in zip(numbers, found):   # a file appended twice, a GUID in two files
            by_number.setdefault(number, []).append(each)

    def _materialize(self, key: tuple[int, int]) -> None:
        by_number = self._deferred.get(key[0])
        found = by_number.pop(key[1], None) if by_number is not None else None
        if found is None:
            return
        if not by_number:
            del self._deferred[key[0]]
        number = key[1]
        if len(found) > 1:   # the highest priority first (of equal ones, the first noted)
            found.sort(key=itemgetter(3), reverse=True)   # (noted, entries, index, priority)
        for _noted, entries, index, priority in found:
            if key in self._messages and priority <= self._priority[key]:
                self._outranked.append((entries, index, number, priority))   # cannot win: parsed on a full listing
            else:
                self._add_deferred(entries, index, number, priority)

    def _materialize_guid(self, guid: int) -> None:
        for number in sorted(self._deferred.get(guid, ())):
            self._materialize((guid, number))

    def _materialize_all(self) -> None:
        while keys := self._deferred_keys():
            for key in keys:
                self._materialize(key)
        self._deferred.clear()   # GUIDs noted with no number
        outranked, self._outranked = self._outranked, []
        for entries, index, number, priority in outranked:
            self._add_deferred(entries, index, number, priority)   # does not win: its format is compared
        self._report_conflicts()

    def _add_deferred(self, entries, index: int | None, number: int, priority: int) -> None:
        """Parse a deferred entry (see ``_parse_deferred``) and add its message ``number``."""
        for message in self._parse_deferred(entries, index):
            if message.number == number:
                self.add_message(message, priority)

    def _parse_deferred(self, entries, index: int | None) -> list[Message]:
        """The messages of a deferred entry: one ``defer`` noted (index None) or the index-th
        of a ``defer_run``."""
        return entries.messages(self) if index is None else entries.messages(index, self)

    def _deferred_keys(self) -> list[tuple[int, int]]:
        """The deferred keys in the order they were first noted (as if each entry had been
        parsed when it was read)."""
        order = sorted((found[0][0], found[0][2] or 0, guid, number)
                       for guid, by_number in self._deferred.items()
                       for number, found in by_number.items())
        return [(guid, number) for _noted, _index, guid, number in order]

    def add_enum(self, enum: EnumDef) -> None:
        self._enums[enum.name] = enum

    def add_control_guid(self, control: ControlGuid) -> None:
        self.control_guids.append(control)

    @property
    def issues(self) -> list[TmfError]:
        """The problems kept, in the order they were met: per file the first
        MAX_ISSUES_PER_FILE in the file (by line and column), whatever order its parts were
        parsed in."""
        return list(self._kept.values())

    @property
    def issues_dropped(self) -> dict[str, int]:
        """Per file path: the problems met but not kept (past MAX_ISSUES_PER_FILE)."""
        dropped = {}
        for path, units in self.issue_counts.items():
            more = sum(units.values()) - len(self._kept_places.get(path, ()))
            if more > 0:
                dropped[path] = more
        return dropped

    def add_issue(self, issue: TmfError, unit: int = 0) -> None:
        """Count a problem of ``unit`` of its file (see ``issue_counts``) and keep it if it
        is among the file's first MAX_ISSUES_PER_FILE."""
        self._count_issue(issue.path, unit, 1)
        self._keep(issue)

    def issue_room(self, path: str, line: int = 0, column: int = 0) -> bool:
        """Whether a problem of ``path`` at ``line``:``column`` would be kept (a reader that
        asks first need not make the TmfError of one that would only be counted)."""
        places = self._kept_places.get(path)
        return (places is None or len(places) < MAX_ISSUES_PER_FILE
                or (line, column) < (-places[0][0], -places[0][1]))

    def drop_issue(self, path: str, count: int = 1, unit: int = 0) -> None:
        """Count problems of ``path`` that are not kept (``issue_room`` said so)."""
        self._count_issue(path, unit, count)

    def _count_issue(self, path: str, unit: int, count: int) -> None:
        units = self.issue_counts.setdefault(path, {})
        units[unit] = units.get(unit, 0) + count

    def _keep(self, issue: TmfError) -> None:
        """Keep ``issue`` (counted already) if it is among its file's first
        MAX_ISSUES_PER_FILE, letting go of the last kept one if need be."""
        line, column = issue.line or 0, issue.column or 0
        if not self.issue_room(issue.path, line, column):
            return
        self._met += 1
        places = self._kept_places.setdefault(issue.path, [])
        place = (-line, -column, -self._met)
        if len(places) < MAX_ISSUES_PER_FILE:
            heapq.heappush(places, place)
        else:
            del self._kept[-heapq.heapreplace(places, place)[2]]
        self._kept[self._met] = issue

    def add_pending(self, guid: uuid.UUID | int | None, loader: Callable[["TmfSet"], None],
                    priority: float = float("inf")) -> None:
        """Register ``loader(self)`` to run when ``guid`` (a UUID, or its 128-bit int) is first
        looked up (None: on a full load, or on the first lookup that finds nothing or a
        message of a lower ``priority`` than the loader's messages have)."""
        if guid is None:
            self._pending_any.append(loader)
            self._pending_any_top = max(self._pending_any_top, priority)
        else:
            self._pending.setdefault(_int(guid), []).append(loader)

    def update(self, other: "TmfSet", priority: int | None = None) -> None:
        """Merge another set into this one (ours win at equal priority).

        ``priority`` overrides the priority of every merged message.
        """
        other._materialize_all()
        for key, message in other._messages.items():
            self.add_message(message, other._priority.get(key, 0) if priority is None else priority)
        self._enums.update(other._enums)
        self.control_guids.extend(other.control_guids)
        for path, units in other.issue_counts.items():
            for unit, count in units.items():
                self._count_issue(path, unit, count)
        for issue in other.issues:
            self._keep(issue)
        self.inputs.extend(other.inputs)
        for guid, loaders in other._pending.items():
            self._pending.setdefault(guid, []).extend(loaders)
        self._pending_any.extend(other._pending_any)
        self._pending_any_top = max(self._pending_any_top, other._pending_any_top)

    # -- queries --------------------------------------------------------------------------
    def lookup(self, guid: uuid.UUID | int, number: int) -> Message | None:
        """The message (``guid``, ``number``): the GUID a UUID or its 128-bit int; None when
        there is none."""
        key = (_int(guid), number)
        if key[0] in self._pending:   # the GUID's own files, before what is noted of it
            self._load_guid(key[0])
        by_number = self._deferred.get(key[0])
        if by_number is not None and number in by_number:
            found = by_number[number]
            if len(found) == 1 and key not in self._messages:   # ``_materialize``, inline
                _noted, entries, index, priority = found[0]
                del by_number[number]
                if not by_number:
                    del self._deferred[key[0]]
                for message in self._parse_deferred(entries, index):   # ``_add_deferred``, inline
                    if message.number == number:
                        self.add_message(message, priority)
            else:
                self._materialize(key)
        message = self._messages.get(key)
        # files not named <guid>.tmf: read on the first miss, or when one may outrank the find
        if self._pending_any and (message is None or self._priority[key] < self._pending_any_top):
            self._load_unnamed()
            self._materialize(key)
            message = self._messages.get(key)
        return message

    def has_guid(self, guid: uuid.UUID | int) -> bool:
        """True if any message of this GUID is known (loads that GUID's pending files)."""
        guid = _int(guid)
        if guid not in self._components:
            self._load_guid(guid)
            self._load_unnamed()
            self._materialize_guid(guid)
        return guid in self._components

    def component(self, guid: uuid.UUID | int) -> str | None:
        """The component (prefix %1) of a GUID with known messages, else None; loads only what it needs."""
        return self._components[_int(guid)][1] if self.has_guid(guid) else None

    def first_component(self, guid: uuid.UUID | int) -> str | None:
        """The component of the GUID's lowest-numbered message (the first ``messages`` lists
        of it), else None; loads only what it needs. The GUID's entries are parsed in number
        order up to the first that gives a message, whatever was looked up before: the
        entries parsed, and so the problems reported, are the same in every process of a
        ``fmt -j`` run, whichever messages it met first."""
        guid = _int(guid)
        self._load_guid(guid)
        self._load_unnamed()
        numbers = set(self._deferred.get(guid, ()))
        numbers.update(number for g, number in self._messages if g == guid)
        for number in sorted(numbers):
            self._materialize((guid, number))
            message = self._messages.get((guid, number))
            if message is not None:
                return message.component
        return None

    def messages(self) -> Iterator[Message]:
        """Every message, sorted by (guid, number)."""
        self.load_all()
        for key in sorted(self._messages):   # a GUID's int sorts as its text does
            yield self._messages[key]

    def guids(self) -> list[uuid.UUID]:
        self.load_all()
        guids = {key[0]: message.guid for key, message in self._messages.items()}
        return [guids[guid] for guid in sorted(guids)]

    def enum(self, name: str) -> EnumDef | None:
        """The #enumv definition ``name``. tracepdb writes an enum into the file of each GUID that
        uses it, so a miss reads only files not named <guid>.tmf, never the whole directory."""
        found = self._enums.get(name)
        if found is None and self._pending_any:
            self._load_unnamed()
            found = self._enums.get(name)
        return found

    def enums(self) -> list[EnumDef]:
        self.load_all()
        return list(self._enums.values())

    def __len__(self) -> int:
        self.load_all()
        return len(self._messages)

    def __contains__(self, key: object) -> bool:
        return (isinstance(key, tuple) and len(key) == 2 and is_uuid(key[0])
                and self.lookup(*key) is not None)

    def __iter__(self) -> Iterator[Message]:
        return self.messages()

    # -- lazy loading ---------------------------------------------------------------------
    def _load_guid(self, guid: int) -> None:
        for loader in self._pending.pop(guid, ()):
            loader(self)

    def _load_unnamed(self) -> None:
        while self._pending_any:
            self._pending_any.pop(0)(self)
        self._pending_any_top = float("-inf")

    def load_all(self) -> None:
        """Run every deferred loader now, and parse every entry left for later."""
        self._load_unnamed()
        while self._pending:
            guid = next(iter(self._pending))
            self._load_guid(guid)
        self._materialize_all()


def _int(guid: uuid.UUID | int) -> int:
    """A GUID's 128-bit int, given it or its UUID."""
    return guid if type(guid) is int else guid.int
