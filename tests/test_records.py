"""dockyard.records.frozen behaves as dataclass(frozen=True): the same class written twice,
once with each, must construct, compare, hash, show and refuse assignment alike."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import FrozenInstanceError, dataclass, field

import pytest

from dockyard import config
from dockyard.records import frozen

SEEN: list[str] = []


def sample(decorate):
    """The same class for each decorator: required, default, factory, not compared, not in
    __init__, a __post_init__ and a property."""
    namespace = {
        "__annotations__": {"name": "str", "size": "int", "tags": "tuple[str, ...]", "extra": "dict",
                            "note": "str", "cached": "int"},
        "__module__": __name__,
        "size": 1,
        "tags": ("a",),
        "extra": field(default_factory=dict),
        "note": field(default="", compare=False, repr=False),
        "cached": field(default=0, init=False),
        "__post_init__": lambda self: SEEN.append(self.name),
        "double": property(lambda self: self.size * 2),
    }
    return decorate(type("Sample", (), namespace))


Ours = Sample = sample(frozen)  # pickle finds it as this module's Sample
Theirs = sample(dataclass(frozen=True))


def outcome(call):
    """What a call gives: its value, or its exception's type (the texts differ in wording)."""
    try:
        return ("value", call())
    except Exception as e:  # noqa: BLE001 - the exception is what is compared
        return ("raised", type(e).__name__)


CALLS = [
    ((), {}),
    (("x",), {}),
    (("x", 2), {}),
    (("x", 2, ("b",), {"k": 1}, "n"), {}),
    (("x", 2, ("b",), {"k": 1}, "n", 9), {}),
    ((), {"name": "x", "note": "n"}),
    (("x",), {"name": "y"}),
    (("x",), {"colour": "red"}),
    (("x",), {"cached": 3}),
]


@pytest.mark.parametrize("args, kwargs", CALLS)
def test_construction_gives_the_same_fields_or_the_same_error(args, kwargs):
    ours, theirs = outcome(lambda: Ours(*args, **kwargs)), outcome(lambda: Theirs(*args, **kwargs))
    if theirs[0] == "raised":
        assert ours == theirs
    else:
        assert ours[0] == "value"
        assert dataclasses.asdict(ours[1]) == dataclasses.asdict(theirs[1])
        assert repr(ours[1]) == repr(theirs[1])


def test_defaults_factories_post_init_and_properties_work_as_a_dataclass_s():
    SEEN.clear()
    a, b = Ours("x"), Ours("x")
    assert SEEN == ["x", "x"]
    assert a.extra == {} and a.extra is not b.extra  # one dict per object, from the factory
    assert (a.size, a.tags, a.note, a.cached, a.double) == (1, ("a",), "", 0, 2)


def test_equality_and_hash_use_the_compared_fields_only():
    for cls in (Ours, Theirs):
        a, b = cls("x", note="one"), cls("x", note="two")
        assert a == b and hash(dataclasses.replace(a, extra=None)) == hash(dataclasses.replace(b, extra=None))
        assert a != cls("y") and a != cls("x", size=2)
        with pytest.raises(TypeError):  # a dict field: unhashable, as the dataclass is
            hash(a)
    assert Ours("x") != Theirs("x")  # another class: not equal, as dataclasses decide
    nan = float("nan")
    assert Ours("x", size=nan) == dataclasses.replace(Ours("x", size=nan))  # the same object: equal


def test_fields_replace_and_pickle_see_the_same_class():
    assert [f.name for f in dataclasses.fields(Ours)] == [f.name for f in dataclasses.fields(Theirs)]
    assert dataclasses.is_dataclass(Ours)
    changed = dataclasses.replace(Ours("x"), size=5)
    assert (changed.name, changed.size) == ("x", 5)
    assert pickle.loads(pickle.dumps(Ours("x", 3))) == Ours("x", 3)


def test_assigning_or_deleting_a_field_raises_frozen_instance_error():
    for cls in (Ours, Theirs):
        item = cls("x")
        with pytest.raises(FrozenInstanceError):
            item.size = 2
        with pytest.raises(FrozenInstanceError):
            del item.name
        with pytest.raises(FrozenInstanceError):
            item.other = 1
        assert item.size == 1


@pytest.mark.parametrize("cls", [config.PortMapping, config.ReadyCheck, config.RunSpec, config.BaseSpec,
                                 config.UpdateSpec, config.DeploySpec, config.WatchSpec, config.ImageSpec,
                                 config.ProjectSpec])
def test_every_spec_class_has_the_fields_its_annotations_name(cls):
    names = [name for klass in reversed(cls.__mro__) for name in vars(klass).get("__annotations__", {})]
    assert [f.name for f in dataclasses.fields(cls)] == names
    assert cls.__init__ is Ours.__init__ and cls.__eq__ is Ours.__eq__  # the shared methods


def test_a_loaded_spec_is_frozen_and_equal_to_a_second_load_of_the_same_file(tmp_path):
    (tmp_path / "images" / "app").mkdir(parents=True)
    (tmp_path / "images" / "app" / "Dockerfile").write_text("FROM busybox\n")
    (tmp_path / "containers.toml").write_text(
        '[project]\nname = "rec"\n[images.app]\ntag = "rec/app"\ndir = "images/app"\n'
        'run = { name = "rec-app", ports = ["8080:80"] }\n')
    first = config.load(tmp_path / "containers.toml").image("app")
    assert first.run.ports[0] == config.PortMapping("127.0.0.1", 8080, 80)
    assert hash(first.run.ports[0]) == hash(config.PortMapping("127.0.0.1", 8080, 80))
    assert first.deploy == config.DeploySpec() and first.watch == config.WatchSpec()
    with pytest.raises(FrozenInstanceError):
        first.run.ports[0].host_port = 1
