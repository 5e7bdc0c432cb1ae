"""The tracefmt trace-message prefix: TRACE_FORMAT_PREFIX, variables %1..%9, WPP markers, timestamp text.

A prefix such as the default ``[%9!d!]%8!04X!.%3!04X!::%4!s! [%1!s!]`` is parsed once with
the project's one format-spec parser (``wpptrace.tmf.formatspec.parse_tmf_format``) into a
``PrefixTemplate``. Binding it to one message (``PrefixTemplate.bind``) folds in everything
that is fixed for that message (%1 component, %2 message name, %!FUNC!, %!LEVEL! ... from the
TMF trailer) and leaves a plain ``%``-format string over the per-event values only, so the
hot path is one tuple and one ``%`` operation per event.

Prefix variables (docs/tmf-format.md §6.1): %1 message GUID friendly name (TMF component),
%2 message name (``#typev`` token), %3 thread id, %4 system time text, %5 kernel time,
%6 user time, %7 sequence number, %8 process id, %9 CPU number.
"""
from __future__ import annotations

import os
import time
from operator import itemgetter

from wpptrace._fieldclass import fieldclass
from wpptrace.tmf.formatspec import WPP_MARKERS, parse_tmf_format

from .timestamps import FILETIME_TICKS_PER_SECOND, UNIX_EPOCH_SECONDS

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    from typing import Callable, Mapping, Sequence

__all__ = [
    "DEFAULT_PREFIX",
    "SEQUENCE_PREFIX",
    "PREFIX_ENV",
    "PrefixTemplate",
    "BoundPrefix",
    "TimestampText",
    "prefix_from_environment",
    "filetime_to_text",
    "marker_values",
    "marker_value",
    "MessageMarkers",
]

#: tracefmt's built-in prefix (docs/tmf-format.md §6.1).
DEFAULT_PREFIX = "[%9!d!]%8!04X!.%3!04X!::%4!s! [%1!s!]"
#: the legacy default when sequence numbers are shown (tracefmt -seq).
SEQUENCE_PREFIX = "[%9!d!]%8!04X!.%3!04X!::%4!s! %7!08x! [%1!s!]"
#: the environment variable tracefmt reads the prefix from.
PREFIX_ENV = "TRACE_FORMAT_PREFIX"

# Per-event variables, in the order of the value tuple a BoundPrefix is rendered from.
_DYNAMIC = (3, 4, 5, 6, 7, 8, 9)
_DYNAMIC_INDEX = {var: i for i, var in enumerate(_DYNAMIC)}
# Variables whose value is text (the others are integers).
_TEXT_VARS = frozenset({1, 2, 4})


def prefix_from_environment(environ: Mapping[str, str] | None = None) -> str | None:
    """The TRACE_FORMAT_PREFIX value, or None if unset (an empty value means: no prefix)."""
    return (os.environ if environ is None else environ).get(PREFIX_ENV)


def filetime_to_text(filetime: int, utc: bool = False) -> str:
    """FILETIME -> tracefmt's ``MM/DD/YYYY-HH:MM:SS.mmm`` (local time unless utc)."""
    return TimestampText(utc)(filetime)


class TimestampText:
    """FILETIME -> ``MM/DD/YYYY-HH:MM:SS.mmm``, the date/time part cached per second.

    Milliseconds are truncated, as FILETIME -> SYSTEMTIME conversion does. Times before 1970
    or past what the platform's ``time`` module handles fall back to UTC arithmetic.
    """

    __slots__ = ("utc", "_second", "_text")

    def __init__(self, utc: bool = False) -> None:
        self.utc = utc
        self._second = None
        self._text = ""

    def __call__(self, filetime: int) -> str:
        second, rest = divmod(filetime, FILETIME_TICKS_PER_SECOND)
        if second != self._second:
            self._text = self._second_text(second)
            self._second = second
        return "%s%03d" % (self._text, rest // 10_000)

    def from_milli(self, milli: int) -> str:
        """The text of FILETIME milliseconds (``floor(filetime / 10000)``)."""
        second, ms = divmod(milli, 1000)
        if second != self._second:
            self._text = self._second_text(second)
            self._second = second
        return "%s%03d" % (self._text, ms)

    def _second_text(self, filetime_second: int) -> str:
        unix = filetime_second - UNIX_EPOCH_SECONDS
        try:
            tm = time.gmtime(unix) if self.utc else time.localtime(unix)
        except (OverflowError, OSError, ValueError):
            tm = _civil_from_unix(unix)
        return "%02d/%02d/%04d-%02d:%02d:%02d." % (
            tm[1], tm[2], tm[0], tm[3], tm[4], tm[5])


def _civil_from_unix(unix: int) -> tuple[int, int, int, int, int, int]:
    """UTC (year, month, day, hour, minute, second) for any integer Unix time (proleptic Gregorian)."""
    days, secs = divmod(unix, 86400)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    y = max(0, min(9999, y))
    return (y, m, d, secs // 3600, secs // 60 % 60, secs % 60)


def marker_values(message, *, component: str | None = None,
                  defaults: Mapping[str, str] | None = None) -> dict[str, str]:
    """The WPP marker values of a TMF message for the prefix and the message text.

    The formatter's own rules (``wpptrace.tmf.render.marker_defaults``: trailer keys, LEVEL
    from any ``*LEVEL=`` key, COMPNAME, FILE, LINE) plus upper-case aliases of trailer keys
    (``Flags=`` in some projects) and empty defaults for FUNC/FLAGS/LEVEL/SUBCOMP, so a prefix
    naming a marker the message lacks prints nothing rather than the marker.
    ``defaults``: ``marker_defaults(message)`` when the caller has it (a formatter's
    ``markers``).
    """
    if defaults is None:
        from wpptrace.tmf.render import marker_defaults

        defaults = marker_defaults(message)
    values = dict(defaults)
    for key, value in defaults.items():
        upper = key.upper()
        if upper not in values:
            values[upper] = value
    if component is not None:
        values["COMPNAME"] = component
    for key in _EMPTY_MARKERS:
        if key not in values:
            values[key] = ""
    return values


_EMPTY_MARKERS = ("FUNC", "FLAGS", "LEVEL", "SUBCOMP", "COMPNAME", "FILE", "LINE")
_marker_default = None


def marker_value(message, name: str) -> str | None:
    """``marker_values(message).get(name)``, without making the dict."""
    trailer = getattr(message, "trailer", {}) or {}
    if name in trailer:           # most often: as ``marker_default`` finds it first
        return trailer[name]
    if name in _DEFAULTED:        # the others ``marker_default`` does not know
        global _marker_default
        if _marker_default is None:   # the renderer's module, imported when first needed
            from wpptrace.tmf.render import marker_default as _marker_default
        value = _marker_default(message, name)
        if value is not None:
            return value
    for key, value in trailer.items():
        if key.upper() == name:      # the first key of that upper-case name
            return value
    return "" if name in _EMPTY_MARKERS else None


#: the markers ``marker_default`` gives a value the trailer may not have
_DEFAULTED = frozenset(("LEVEL", "COMPNAME", "FILE", "LINE"))


class MessageMarkers:
    """A message's ``marker_values`` read one at a time (``get``): what its program needs
    of them (a marker or two) costs less than the dict."""

    __slots__ = ("message", "trailer")

    def __init__(self, message) -> None:
        self.message = message
        self.trailer = getattr(message, "trailer", None) or {}

    def get(self, name: str, default=None):
        trailer = self.trailer
        value = trailer[name] if name in trailer else marker_value(self.message, name)
        return default if value is None else value


def _marker_text(name: str, markers: Mapping[str, str]):
    value = markers.get(name)
    if value is None:
        value = markers.get(name.upper())
    if value is None:  # standard markers print empty, unknown ones stay visible
        value = "" if name.upper() in WPP_MARKERS else "%!" + name + "!"
    return value


def _spec_parts(spec) -> tuple[str, int | None, int | None]:
    """(flags, width, precision) of a prefix variable's spec as ``_python_spec`` keeps them."""
    if spec is None:
        return "", None, None
    flags = "".join(ch for ch in (getattr(spec, "flags", "") or "") if ch in "-+ #0")
    width = getattr(spec, "width", None)
    precision = getattr(spec, "precision", None)
    return (flags, None if width in (None, "", "*") else int(width),
            None if precision in (None, "", "*") else int(precision))


def _python_spec(spec, text_value: bool) -> str:
    """A printf spec from the format-spec parser as a Python ``%`` conversion."""
    if spec is None:
        return "%s"
    conv = getattr(spec, "conversion", "s") or "s"
    flags = "".join(ch for ch in (getattr(spec, "flags", "") or "") if ch in "-+ #0")
    width = getattr(spec, "width", None)
    precision = getattr(spec, "precision", None)
    width_text = "" if width in (None, "", "*") else str(width)
    precision_text = "" if precision in (None, "", "*") else "." + str(precision)
    if text_value:
        # Text variables accept only string conversions; any other spec prints the text.
        return "%" + flags.replace("0", "") + width_text + precision_text + "s"
    if conv in ("d", "i", "u"):
        conv = "d"
    elif conv == "p":
        conv = "X"
    elif conv not in ("x", "X", "o", "c", "s"):
        conv = "d"
    return "%" + flags + width_text + precision_text + conv


@fieldclass(frozen=True)
class BoundPrefix:
    """A prefix with one message's fixed values folded in.

    ``render(values)`` takes the per-event tuple
    ``(tid, time_text, kernel_time, user_time, sequence, pid, cpu)``; ``needs_time`` says
    whether the time text is used at all (so callers can skip formatting it).
    """

    template: str  # Python %-format over the selected dynamic values
    pick: Callable | None  # selects the used values from the 7-tuple, in template order
    needs_time: bool
    static: str | None  # the whole prefix when it has no per-event values
    order: tuple[int, ...] = ()  # the prefix variables used, in template order (3..9)
    # The hot path's form, when the prefix allows it (the default does): ``head_template``
    # over ``head_order`` (only %3/%8/%9, so it can be cached per CPU/PID/TID), then the plain
    # %4!s! time text, then the fixed ``tail``. None when the prefix has another shape.
    head_template: str | None = None
    head_order: tuple[int, ...] = ()
    tail: str | None = None

    def head(self, cpu: int, pid: int, tid: int) -> str:
        values = {3: tid, 8: pid, 9: cpu}
        return self.head_template % tuple(values[v] for v in self.head_order)

    def render(self, values: Sequence) -> str:
        if self.static is not None:
            return self.static
        picked = self.pick(values)
        if not isinstance(picked, tuple):
            picked = (picked,)
        return self.template % picked


class PrefixTemplate:
    """A parsed prefix (TRACE_FORMAT_PREFIX syntax), bound per message with ``bind``."""

    def __init__(self, text: str = DEFAULT_PREFIX) -> None:
        self.text = text
        self.pieces = parse_tmf_format(text)
        self._cache: dict[tuple, BoundPrefix] = {}
        self._skeleton: list[tuple] | bool | None = None
        # what ``native_strings`` depend on when no marker: (uses %1, uses %2); False: markers
        self._string_uses: tuple[bool, bool] | bool | None = None
        self._encoded: dict[tuple, tuple[bytes, ...]] = {}

    @property
    def uses_variables(self) -> frozenset[int]:
        return frozenset(p.index for p in self.pieces if type(p).__name__ == "Insert")

    def bind(self, component: str, message_name: str, markers: Mapping[str, str]) -> BoundPrefix:
        """Fold %1, %2 and the WPP markers into the template; cached per distinct value set."""
        key = (component, message_name, tuple(sorted(markers.items())))
        bound = self._cache.get(key)
        if bound is None:
            bound = self._bind(component, message_name, markers)
            if len(self._cache) < 65536:
                self._cache[key] = bound
        return bound

    def native_ops(self, component: str, message_name: str, markers: Mapping[str, str]) -> list[tuple] | None:
        """The prefix bound to one message as C renderer ops (``wpptrace.tmf.native``): the
        same text ``bind(...).render(values)`` gives; None when only Python prints it (a
        ``%c`` of a number)."""
        skeleton = self._skeleton
        if skeleton is None:
            skeleton = self._skeleton = self._native_skeleton()
        if skeleton is False:
            return None
        ops = []
        for kind, value in skeleton:
            if kind == "op":
                ops.append(value)
            elif kind == "text":  # %1 / %2, with their spec applied by Python's %
                ops.append(("lit", value[0] % (component if value[1] == 1 else message_name)))
            else:
                ops.append(("lit", str(_marker_text(value, markers))))
        return ops

    def native_shared_ops(self) -> list[tuple] | None:
        """The prefix as ops of one shared prefix program for every message (``pstr`` k
        prints the k-th of ``native_strings``); None when only Python prints it."""
        skeleton = self._skeleton
        if skeleton is None:
            skeleton = self._skeleton = self._native_skeleton()
        if skeleton is False:
            return None
        ops, k = [], 0
        for kind, value in skeleton:
            if kind == "op":
                ops.append(value)
            else:
                ops.append(("pstr", k))
                k += 1
        return ops

    def native_strings(self, component: str, message_name: str, markers: Mapping[str, str]) -> list[str]:
        """The texts a message gives the shared prefix: %1 and %2 with their specs applied,
        marker values, in the order of the ``pstr`` ops."""
        out = []
        for kind, value in self._skeleton or ():
            if kind == "text":
                out.append(value[0] % (component if value[1] == 1 else message_name))
            elif kind == "marker":
                out.append(str(_marker_text(value, markers)))
        return out

    def native_encoded_strings(self, component: str, message_name: str,
                               markers: Mapping[str, str]) -> tuple[bytes, ...]:
        """``native_strings`` encoded as UTF-8; made once per %1 / %2 text when the prefix
        names no marker (they depend on nothing else then)."""
        uses = self._string_uses
        if uses is None:
            if self._skeleton is None:
                self._skeleton = self._native_skeleton()
            skeleton = self._skeleton or ()
            uses = self._string_uses = (False if any(kind == "marker" for kind, _v in skeleton) else
                                        (any(kind == "text" and value[1] == 1 for kind, value in skeleton),
                                         any(kind == "text" and value[1] == 2 for kind, value in skeleton)))
        if uses is False:
            return tuple(text.encode("utf-8") for text in self.native_strings(component, message_name, markers))
        key = (component if uses[0] else None, message_name if uses[1] else None)
        found = self._encoded.get(key)
        if found is None:
            found = tuple(text.encode("utf-8") for text in self.native_strings(component, message_name, markers))
            if len(self._encoded) < 65536:
                self._encoded[key] = found
        return found

    def _native_skeleton(self) -> list[tuple] | bool:
        """The ops of ``native_ops`` with the per-message texts still to fill in (False: a
        prefix only Python prints)."""
        out: list[tuple] = []
        for piece in self.pieces:
            kind = type(piece).__name__
            if kind == "Literal":
                out.append(("op", ("lit", piece.text)))
            elif kind == "Marker":
                if piece.name == "PREFIX":
                    continue
                if piece.name == "END":
                    break
                out.append(("marker", piece.name))
            elif kind == "Insert":
                index, spec = piece.index, piece.spec
                if index in (1, 2):
                    out.append(("text", (_python_spec(spec, True), index)))
                elif index == 4:
                    flags, width, prec = _spec_parts(spec)
                    out.append(("op", ("ptime", flags.replace("0", ""), width, prec)))
                elif index in _DYNAMIC_INDEX:
                    conv = _python_spec(spec, False)[-1]
                    if conv == "c":
                        return False
                    out.append(("op", ("pvar", index, conv) + _spec_parts(spec)))
        return out

    def _bind(self, component: str, message_name: str, markers: Mapping[str, str]) -> BoundPrefix:
        out: list[str] = []
        slot_vars: list[int | None] = []  # the dynamic variable of each ``out`` element
        order: list[int] = []
        for piece in self.pieces:
            kind = type(piece).__name__
            if kind == "Literal":
                out.append(piece.text.replace("%", "%%"))
            elif kind == "Marker":
                if piece.name == "PREFIX":  # a leading %0 in a prefix: nothing to insert
                    continue
                if piece.name == "END":  # %0 elsewhere ends the text (FormatMessage)
                    break
                out.append(str(_marker_text(piece.name, markers)).replace("%", "%%"))
            elif kind == "Insert":
                index = piece.index
                spec = _python_spec(piece.spec, index in _TEXT_VARS)
                if index == 1:
                    out.append((spec % component).replace("%", "%%"))
                elif index == 2:
                    out.append((spec % message_name).replace("%", "%%"))
                elif index in _DYNAMIC_INDEX:
                    out.append(spec)
                    order.append(_DYNAMIC_INDEX[index])
                    slot_vars.extend([None] * (len(out) - 1 - len(slot_vars)) + [index])
                # %0 and inserts above %9 have no meaning in a prefix: they print nothing.
            else:  # pragma: no cover - a piece kind this module does not know
                out.append(str(getattr(piece, "text", "")).replace("%", "%%"))
        template = "".join(out)
        if not order:
            return BoundPrefix(template, None, False, template % ())
        variables = tuple(_DYNAMIC[i] for i in order)
        slot_vars.extend([None] * (len(out) - len(slot_vars)))
        head_template = tail = None
        head_order: tuple[int, ...] = ()
        if variables.count(4) == 1:
            at = slot_vars.index(4)
            head_order = tuple(v for v in slot_vars[:at] if v is not None)
            if (out[at] == "%s" and set(head_order) <= {3, 8, 9}
                    and all(v is None for v in slot_vars[at + 1:])):
                head_template = "".join(out[:at])
                tail = "".join(out[at + 1:]) % ()
        return BoundPrefix(template, itemgetter(*order), _DYNAMIC_INDEX[4] in order, None,
                           variables, head_template, head_order if head_template is not None else (),
                           tail)
