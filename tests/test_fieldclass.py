"""Field classes (``wpptrace._fieldclass``) stand in for dataclasses on fmt's path: each
one must behave as the dataclass with the same fields would, and the ``dataclasses``
functions must treat it as one (they are public classes: LogfileHeader, BufferInfo,
Message, ...)."""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import pytest

from wpptrace._fieldclass import FrozenInstanceError, field, fieldclass, replace


def _field_classes() -> list[type]:
    found = {}
    for package in ("wpptrace.decoder", "wpptrace.tmf"):
        module = importlib.import_module(package)
        names = [package] + [f"{package}.{info.name}" for info in pkgutil.iter_modules(module.__path__)]
        for name in names:
            try:
                module = importlib.import_module(name)
            except ImportError:          # an optional extra (pyarrow, dask) not installed
                continue
            for value in vars(module).values():
                if isinstance(value, type) and "_fc_fields" in value.__dict__:
                    found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[key] for key in sorted(found)]


CLASSES = _field_classes()


def test_the_fmt_path_classes_are_found():
    names = {cls.__name__ for cls in CLASSES}
    assert {"BufferInfo", "Buffer", "LogfileHeader", "Message", "DecodeIssue", "FmtOptions"} <= names
    assert len(CLASSES) >= 20


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__qualname__)
def test_each_class_has_the_signature_and_fields_of_its_dataclass(cls):
    assert dataclasses.is_dataclass(cls)
    twin = cls._fc_twin
    assert [f.name for f in dataclasses.fields(cls)] == [f.name for f in cls._fc_fields]
    assert str(inspect.signature(cls)) == str(inspect.signature(twin))
    assert cls.__dataclass_params__.frozen == twin.__dataclass_params__.frozen
    assert (cls.__hash__ is None) == (twin.__hash__ is None)


def test_dataclasses_functions_work_on_a_real_header(corpus):
    from wpptrace.decoder.etlfile import EtlFile

    path = sorted(corpus.rglob("*.etl"))[0]
    with EtlFile(str(path)) as etl:
        header, info = etl.header, etl.buffer_index()[0]
    as_dict = dataclasses.asdict(header)
    assert as_dict["buffer_size"] == header.buffer_size and len(as_dict) == len(header._fc_fields)
    assert dataclasses.astuple(info)[0] == info.index
    moved = dataclasses.replace(info, processor=info.processor + 1)
    assert type(moved) is type(info) and moved.processor == info.processor + 1
    assert moved == replace(info, processor=info.processor + 1) != info


def test_init_annotations_resolve_in_the_class_module():
    """As a dataclass's: typing.get_type_hints finds the names of the class's own module."""
    import typing

    from wpptrace.decoder.buffers import Buffer
    from wpptrace.decoder.records import DecodeIssue

    hints = typing.get_type_hints(Buffer.__init__)
    assert hints["issues"] == list[DecodeIssue] and hints["index"] is int


def test_frozen_mutable_defaults_and_factories():
    @fieldclass(frozen=True)
    class Point:
        x: int
        y: int = 2
        tags: list = field(default_factory=list, compare=False)

    @fieldclass
    class Box:
        size: int
        items: list = field(default_factory=list)

    p = Point(1)
    assert p == Point(1, 2, ["other"]) and hash(p) == hash(Point(1))
    assert repr(p) == "test_frozen_mutable_defaults_and_factories.<locals>.Point(x=1, y=2, tags=[])"
    with pytest.raises(FrozenInstanceError, match="cannot assign to field 'x'"):
        p.x = 5
    assert issubclass(FrozenInstanceError, AttributeError)
    a, b = Box(1), Box(1)
    assert a.items is not b.items and a == b
    with pytest.raises(TypeError):
        hash(a)
    assert dataclasses.asdict(Box(3, [Point(1)])) == {"size": 3, "items": [{"x": 1, "y": 2, "tags": []}]}


def test_init_is_compiled_once_a_class_is_used():
    """A field class's ``__init__`` is compiled once, when the class is used more than a few
    times: importing the TMF model compiles none (fmt makes its messages without
    ``__init__``), and a class's first ``_COMPILE_AFTER`` objects are made by the generic
    ``__init__``; the next object, or ``inspect.signature``, compiles it."""
    import subprocess
    import sys

    script = (
        "import wpptrace._fieldclass as fc\n"
        "made = []\n"
        "make = fc._make_init\n"
        "fc._make_init = lambda cls, *a: made.append(cls.__name__) or make(cls, *a)\n"
        "from wpptrace.tmf.model import Argument, Message\n"
        "assert made == [] and type(vars(Argument)['__init__']) is fc._LazyInit, made\n"
        "first, second = Argument('x', 'ItemLong'), Argument('y', 'ItemString', insert=11)\n"
        "assert made == [], made\n"
        "assert (first.name, first.insert, second.insert) == ('x', 10, 11)\n"
        "others = [Argument(str(n), 'ItemLong') for n in range(fc._COMPILE_AFTER - 2)]\n"
        "assert made == [] and type(vars(Argument)['__init__']) is fc._LazyInit, made\n"
        "last = Argument('z', 'ItemLong', insert=12)\n"
        "assert made == ['Argument'] and (last.name, last.insert) == ('z', 12), made\n"
        "assert vars(Argument)['__init__'] is Argument.__init__\n"
        "assert Argument.__init__.__qualname__ == 'Argument.__init__'\n"
        "assert [a.name for a in others] == [str(n) for n in range(fc._COMPILE_AFTER - 2)]\n"
        "import inspect\n"
        "assert str(inspect.signature(Message)).startswith(\"(guid: 'uuid.UUID', number: 'int'\")\n"
        "assert made == ['Argument', 'Message'], made\n")
    subprocess.run([sys.executable, "-c", script], check=True)


def _twin_classes():
    """A fresh frozen and a fresh mutable field class of the same fields (factories,
    defaults, a required one), their ``__init__`` not compiled yet."""
    made = []

    def factory():
        made.append(1)
        return [len(made)]

    @fieldclass(frozen=True)
    class Frozen:
        a: int
        b: str = "b"
        c: list = field(default_factory=factory)
        d: int = 4

    @fieldclass
    class Mutable:
        a: int
        b: str = "b"
        c: list = field(default_factory=factory)
        d: int = 4

    return Frozen, Mutable, made


CALLS = [((1,), {}), ((1, "x"), {}), ((1, "x", [9], 5), {}), ((), {"a": 1}),
         ((1,), {"d": 7}), ((1,), {"c": None}), ((), {"d": 2, "a": 3, "b": "y"}),
         ((1, 2, 3, 4, 5), {}), ((), {}), ((1,), {"a": 2}), ((1,), {"e": 0}), ((), {"b": 1})]


@pytest.mark.parametrize("args, kwargs", CALLS)
def test_the_generic_init_makes_what_the_compiled_one_does(args, kwargs):
    """The same objects, the same factory calls, the same errors (raised by the compiled
    ``__init__``, which the generic one hands a call it cannot bind)."""
    import wpptrace._fieldclass as fc

    results = []
    for compiled in (False, True):
        for cls in _twin_classes()[:2]:
            looked = cls.__init__ if compiled else None   # (a look-up on the class compiles it)
            assert (type(vars(cls)["__init__"]) is fc._LazyInit) is (not compiled), looked
            try:
                obj = cls(*args, **kwargs)
            except TypeError as exc:
                results.append(("error", str(exc)))
            else:
                results.append(("made", repr(obj)))
    assert results[0] == results[2] and results[1] == results[3]
    assert (results[0][0] == "error") == (results[1][0] == "error")


def test_the_generic_init_sets_fields_as_the_compiled_one():
    """Through the class's ``__setattr__`` (mutable) or around it (frozen), in field order,
    each factory called once per object that needs it."""
    Frozen, Mutable, made = _twin_classes()
    seen = []

    class Watched(Mutable):
        def __setattr__(self, name, value):
            seen.append(name)
            super().__setattr__(name, value)

    w = Watched(1, d=3)
    assert seen == ["a", "b", "c", "d"] and (w.a, w.c, w.d) == (1, [1], 3)
    f = Frozen(2)
    assert f.c == [2] and made == [1, 1] and Frozen(2, c=[2]) == f
    with pytest.raises(FrozenInstanceError):
        f.a = 3


def test_a_plain_subclass_makes_objects_through_the_lazy_init():
    @fieldclass
    class Base:
        x: int
        y: int = 2

    class Sub(Base):
        def __init__(self, x):
            super().__init__(x, 3)

    assert (Sub(1).x, Sub(1).y) == (1, 3) and Base(4) == Base(4, 2)
    init = Base.__init__                      # (a look-up on the class compiles it)
    assert vars(Base)["__init__"] is init and init.__qualname__.endswith("Base.__init__")
