"""``@fieldclass``: the part of ``@dataclasses.dataclass`` the decoder and TMF modules use,
made cheaply.

``dataclasses`` imports ``inspect`` (and ``ast``, ``dis``, ``tokenize``) and compiles five or
six generated functions per class: on ``wpptrace fmt``'s path that was a quarter of the
start-up of a small file. A field class gets the same ``__init__`` (keyword or positional,
defaults, ``default_factory``), ``__repr__``, ``__eq__``, ``__match_args__``, and, when
``frozen``, the same immutability and ``__hash__``; only ``__init__`` is compiled (it runs
per object), the rest are shared functions reading the class's field table. ``__init__`` is
compiled once the class is used: compiling one costs about 0.6 M instructions, and a fmt run
makes objects of only half of the classes it imports, most of those once or a few times
before its first record (a header, read counters, the prefix's pieces). So the first
``_COMPILE_AFTER`` objects of a class are made by a generic ``__init__`` reading the field
table (about 1/50 of a compile each), and the compiled one takes its place with the next
object, a call the generic one cannot bind (its error is the compiled one's), or a look-up
of ``__init__`` on the class (``inspect.signature``). For programs
that use the ``dataclasses`` functions on these public classes (``fields``, ``asdict``,
``astuple``, ``replace``, ``is_dataclass``), a field class answers as the dataclass it stands
for: its ``__dataclass_fields__`` come from a dataclass made with the same fields the first
time they are asked for (``dataclasses`` is imported then, not on fmt's path).
"""
from __future__ import annotations

import sys

__all__ = ["FrozenInstanceError", "field", "fieldclass", "replace"]

_MISSING = object()


class _Factory:
    """The ``__init__`` default of a field made by its default_factory."""

    def __repr__(self) -> str:
        return "<factory>"   # as a dataclass's signature shows it


_FACTORY = _Factory()


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen field class (as ``dataclasses.FrozenInstanceError``)."""


class Field:
    __slots__ = ("name", "annotation", "default", "default_factory", "repr", "compare", "hash")

    def __init__(self, default=_MISSING, default_factory=_MISSING, repr: bool = True,
                 compare: bool = True, hash: bool | None = None):
        self.name = ""
        self.annotation = None
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare
        self.hash = compare if hash is None else hash


def field(*, default=_MISSING, default_factory=_MISSING, repr: bool = True, compare: bool = True,
          hash: bool | None = None):
    """A field's options, as ``dataclasses.field`` takes them."""
    return Field(default, default_factory, repr, compare, hash)


def fieldclass(cls=None, /, *, frozen: bool = False):
    """Give ``cls`` the methods ``@dataclass`` (``eq=True``) would, from its annotations."""
    if cls is None:
        return lambda cls: _build(cls, frozen)
    return _build(cls, frozen)


def replace(obj, /, **changes):
    """A copy of a field-class object with ``changes`` (as ``dataclasses.replace``)."""
    values = {f.name: getattr(obj, f.name) for f in obj._fc_fields}
    values.update(changes)
    return obj.__class__(**values)


def _build(cls, frozen: bool):
    fields: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        for f in getattr(base, "_fc_fields", ()):
            fields[f.name] = f
    annotations = cls.__dict__.get("__annotations__", {})
    for name in annotations:
        value = cls.__dict__.get(name, _MISSING)
        f = value if isinstance(value, Field) else Field(default=value)
        f.name = name
        f.annotation = annotations[name]
        if isinstance(value, Field):
            if f.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        fields[name] = f
    table = tuple(fields.values())
    cls._fc_fields = table
    cls._fc_frozen = frozen
    cls.__dataclass_fields__ = _AsDataclass("__dataclass_fields__")
    cls.__dataclass_params__ = _AsDataclass("__dataclass_params__")
    cls.__replace__ = replace           # copy.replace (Python 3.13), as a dataclass has it
    cls.__match_args__ = tuple(f.name for f in table)
    cls.__init__ = _LazyInit(cls)
    if cls.__doc__ is None:   # a dataclass documents itself by its signature
        cls.__doc__ = cls.__name__ + "(" + ", ".join(map(_describe, table)) + ")"
    cls.__repr__ = _repr
    cls.__eq__ = _eq
    if frozen:
        cls.__setattr__ = _frozen_setattr
        cls.__delattr__ = _frozen_delattr
        cls.__hash__ = _hash
    elif "__hash__" not in cls.__dict__:
        cls.__hash__ = None   # mutable and compared by value: unhashable, as a dataclass
    cls._fc_compared = tuple(f.name for f in table if f.compare)
    cls._fc_hashed = tuple(f.name for f in table if f.hash)
    return cls


class _AsDataclass:
    """A class attribute the ``dataclasses`` functions read, taken from the dataclass made
    with the field class's fields (once per class, on first use)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj, owner):
        return getattr(_dataclass_twin(owner), self.name)


def _dataclass_twin(cls):
    twin = cls.__dict__.get("_fc_twin")
    if twin is None:
        import dataclasses

        specs = []
        for f in cls._fc_fields:
            options = {"repr": f.repr, "compare": f.compare, "hash": f.hash}
            if f.default_factory is not _MISSING:
                options["default_factory"] = f.default_factory
            elif f.default is not _MISSING:
                options["default"] = f.default
            specs.append((f.name, f.annotation, dataclasses.field(**options)))
        twin = dataclasses.make_dataclass(cls.__name__, specs, frozen=cls._fc_frozen)
        type.__setattr__(cls, "_fc_twin", twin)
    return twin


#: objects of a field class made by the generic ``__init__`` before the compiled one is made
_COMPILE_AFTER = 16


class _LazyInit:
    """A field class's ``__init__`` until it is compiled: the generic one for the class's
    first ``_COMPILE_AFTER`` objects, then (or when looked up on the class, or given a call
    it cannot bind) the compiled one takes its place on the class."""

    def __init__(self, cls) -> None:
        self.cls = cls
        self.made = 0
        self.generic = _generic_init(self)

    def __get__(self, obj, owner=None):
        # a look-up on the class: obj None, or the class itself (Python 3.13's inspect.signature
        # reads __init__ statically, then calls __get__ with the class and its metaclass)
        on_class = obj is None or isinstance(obj, type)
        if not on_class and self.made < _COMPILE_AFTER:
            self.made += 1
            return self.generic.__get__(obj, owner)
        init = self.compiled()
        return init if obj is None else init.__get__(obj, owner)    # (bound as a function is)

    def compiled(self):
        """The compiled ``__init__``, put on the class (once)."""
        cls = self.cls
        init = cls.__dict__.get("__init__")
        if init is self:
            init = _make_init(cls, cls._fc_fields, cls._fc_frozen)
            init.__annotations__ = {**{f.name: f.annotation for f in cls._fc_fields}, "return": None}
            type.__setattr__(cls, "__init__", init)
        return init


def _generic_init(lazy: _LazyInit):
    """The ``__init__`` the compiled one would be, as one function reading the field table:
    every argument bound first, then each field set in table order (defaults made by their
    factories as they come); a call it cannot bind goes to the compiled one, which raises
    the error a dataclass's ``__init__`` would."""
    table = lazy.cls._fc_fields
    names = frozenset(f.name for f in table)
    store = object.__setattr__ if lazy.cls._fc_frozen else setattr

    def __init__(self, *args, **kwargs):
        if len(args) > len(table) or (kwargs and not names.issuperset(kwargs)):
            return lazy.compiled()(self, *args, **kwargs)
        values = list(args)
        for f in table[len(args):]:
            if f.name in kwargs:
                values.append(kwargs[f.name])
            elif f.default_factory is not _MISSING:
                values.append(_FACTORY)
            elif f.default is not _MISSING:
                values.append(f.default)
            else:
                return lazy.compiled()(self, *args, **kwargs)   # a field missing
        if kwargs and args and any(f.name in kwargs for f in table[:len(args)]):
            return lazy.compiled()(self, *args, **kwargs)       # a field given twice
        for f, value in zip(table, values):
            if value is _FACTORY and f.default_factory is not _MISSING:
                value = f.default_factory()
            store(self, f.name, value)

    return __init__


def _make_init(cls, table: tuple[Field, ...], frozen: bool):
    params, body = [], []
    scope = {"_FACTORY": _FACTORY, "_set": object.__setattr__}
    for f in table:
        if f.default_factory is not _MISSING:
            scope[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_FACTORY")
            value = f"_factory_{f.name}() if {f.name} is _FACTORY else {f.name}"
        elif f.default is not _MISSING:
            scope[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
            value = f.name
        else:
            params.append(f.name)
            value = f.name
        body.append(f"_set(self, {f.name!r}, {value})" if frozen else f"self.{f.name} = {value}")
    # made inside a function of the class's module, as dataclasses does: the defaults come in
    # as closure cells, and the module's names stay the function's globals
    # (typing.get_type_hints resolves the annotations there)
    source = (f"def __create_init__({', '.join(scope)}):\n"
              f"  def __init__(self, {', '.join(params)}):\n    "
              + ("\n    ".join(body) or "pass") + "\n  return __init__\n")
    made: dict = {}
    module = sys.modules.get(cls.__module__)
    exec(source, module.__dict__ if module is not None else {}, made)
    init = made["__create_init__"](**scope)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    return init


def _describe(f: Field) -> str:
    text = f"{f.name}: {f.annotation!r}"
    if f.default_factory is not _MISSING:
        return text + " = <factory>"
    return text if f.default is _MISSING else f"{text} = {f.default!r}"


def _repr(self) -> str:
    shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self._fc_fields if f.repr)
    return f"{self.__class__.__qualname__}({shown})"


def _eq(self, other):
    if other.__class__ is not self.__class__:
        return NotImplemented
    names = self._fc_compared
    return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)


def _hash(self) -> int:
    return hash(tuple(getattr(self, n) for n in self._fc_hashed))


def _frozen_setattr(self, name: str, value) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")
