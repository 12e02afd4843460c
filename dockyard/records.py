"""``frozen``: ``@dataclass(frozen=True)`` without the code dataclasses writes for each class.

For every class it decorates, ``dataclass(frozen=True)`` writes the source of an ``__init__``,
``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__`` and ``__delattr__`` and compiles each
one: for containers.toml's nine spec classes that is about 40 million instructions (9 ms)
at the start of every command, more than anything else dockyard imports. ``frozen`` lets
dataclasses register the same fields (so ``dataclasses.fields``, ``replace``, ``asdict`` and
``is_dataclass`` work on the class as before) and gives every class one shared, written-once
copy of each method, with the same behaviour: positional or keyword arguments in field order,
defaults and default factories, equality and hash over the fields, ``Name(field=value, ...)``
as repr, and FrozenInstanceError on assignment.

A shared ``__init__`` is a loop over the fields, slower per object than a generated one (a
microsecond or two): it suits classes made a few times per command or per request (specs,
the engine choice), not one object per file of a context.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, FrozenInstanceError
from typing import Any, TypeVar

T = TypeVar("T")


def frozen(cls: type[T]) -> type[T]:
    """The class as ``@dataclass(frozen=True)`` makes it, with shared methods (see above)."""
    cls = dataclasses.dataclass(init=False, repr=False, eq=False)(cls)
    fields = dataclasses.fields(cls)
    cls._init_fields = tuple((f.name, f.default, f.default_factory) for f in fields if f.init)
    cls._late_fields = tuple((f.name, f.default, f.default_factory) for f in fields if not f.init)
    cls._compared = tuple(f.name for f in fields if f.compare)
    cls._hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
    cls._shown = tuple(f.name for f in fields if f.repr)
    for name in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__"):
        setattr(cls, name, _METHODS[name])
    return cls


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    cls = type(self)
    fields = cls._init_fields
    if len(args) > len(fields):
        raise TypeError(f"{cls.__name__}.__init__() takes {len(fields) + 1} positional arguments "
                        f"but {len(args) + 1} were given")
    for (name, _, _), value in zip(fields, args):
        if name in kwargs:
            raise TypeError(f"{cls.__name__}.__init__() got multiple values for argument '{name}'")
        object.__setattr__(self, name, value)
    for name, default, factory in fields[len(args):]:
        if name in kwargs:
            value = kwargs.pop(name)
        elif default is not MISSING:
            value = default
        elif factory is not MISSING:
            value = factory()
        else:
            raise TypeError(f"{cls.__name__}.__init__() missing 1 required argument: '{name}'")
        object.__setattr__(self, name, value)
    if kwargs:
        name = next(iter(kwargs))
        raise TypeError(f"{cls.__name__}.__init__() got an unexpected keyword argument '{name}'")
    for name, default, factory in cls._late_fields:
        if default is not MISSING:
            object.__setattr__(self, name, default)
        elif factory is not MISSING:
            object.__setattr__(self, name, factory())
    post_init = getattr(self, "__post_init__", None)
    if post_init is not None:
        post_init()


def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in type(self)._shown)
    return f"{type(self).__qualname__}({shown})"


def _eq(self: Any, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    names = type(self)._compared
    return tuple(getattr(self, name) for name in names) == tuple(getattr(other, name) for name in names)


def _hash(self: Any) -> int:
    return hash(tuple(getattr(self, name) for name in type(self)._hashed))


def _setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


_METHODS = {"__init__": _init, "__repr__": _repr, "__eq__": _eq, "__hash__": _hash,
            "__setattr__": _setattr, "__delattr__": _delattr}
