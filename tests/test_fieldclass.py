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


def test_init_is_compiled_when_first_used():
    """A field class's ``__init__`` is compiled on its first use, once: importing the TMF
    model compiles none (fmt makes its messages without ``__init__``)."""
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
        "assert made == ['Argument'], made\n"
        "assert (first.name, first.insert, second.insert) == ('x', 10, 11)\n"
        "assert vars(Argument)['__init__'] is Argument.__init__\n"
        "assert Argument.__init__.__qualname__ == 'Argument.__init__'\n"
        "import inspect\n"
        "assert str(inspect.signature(Message)).startswith(\"(guid: 'uuid.UUID', number: 'int'\")\n"
        "assert made == ['Argument', 'Message'], made\n")
    subprocess.run([sys.executable, "-c", script], check=True)


def test_a_plain_subclass_makes_objects_through_the_lazy_init():
    @fieldclass
    class Base:
        x: int
        y: int = 2

    class Sub(Base):
        def __init__(self, x):
            super().__init__(x, 3)

    assert (Sub(1).x, Sub(1).y) == (1, 3) and Base(4) == Base(4, 2)
    assert vars(Base)["__init__"] is Base.__init__ and Base.__init__.__qualname__.endswith("Base.__init__")
