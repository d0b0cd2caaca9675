"""The codec: messages to bytes and back, at pickle's speed where it can be.

Messages that cross a process boundary are pickled with protocol 5. A class
or function the other side cannot import by name travels by value instead,
pickled by cloudpickle: one defined in ``__main__`` (a script's actors and
messages), in a module registered with ``cloudpickle.register_pickle_by_value``,
or one not reachable by its qualified name at all (a lambda, a class made
inside a function). The rule is cloudpickle's own (``_should_pickle_by_reference``
in its ``cloudpickle.py``), applied by a ``pickle.Pickler`` whose
``reducer_override`` hands just those objects to cloudpickle.

Most messages need none of that, and a ``reducer_override`` costs a Python
call for every object in the message. So :func:`dumps` first tries plain
``pickle.dumps`` (all C): when no module is registered by value, the result
is final unless it names ``__main__`` or pickling failed (a lambda, a local
class), and only then does the message go through the by-value pickler.

Spawn specs (an actor class and its arguments) always go through cloudpickle:
they are rare, and their classes are often the ones a child cannot import.

Examples:
    >>> loads(dumps({"sku": "ABC-123", "qty": 3}))
    {'sku': 'ABC-123', 'qty': 3}
    >>> square = loads(dumps(lambda x: x * x))  # by value: a lambda has no name
    >>> square(7)
    49
"""

# Invariants:
# - ``dumps`` returns plain pickle's bytes only if no module was registered by
#   value and they name no ``__main__`` object: then cloudpickle's rule would
#   have sent every class and function in them by reference too. (A
#   ``__reduce__`` may therefore run twice: once in the attempt that failed.)
# - A pickler in ``_POOL`` is idle: no chunks and a clear memo. A caller pops
#   one before use and pushes it back only once it is clean again, so a
#   reentrant call (a ``__reduce__`` that pickles) or another thread never
#   shares a pickler with a running dump; it builds a fresh one instead.
# - A class pickled by value is pickled once per process (``_SENT_CLASSES``)
#   and rebuilt once per process per distinct pickle (``_LOADED_CLASSES``):
#   later changes to a class sent by value are not sent again.

from __future__ import annotations

import pickle
import sys
import types
import weakref
from typing import Any, Final

import cloudpickle

from ._exceptions import UnpicklableMessage

#: Pickle protocol 5: out-of-band buffers, and the fastest framing.
PROTOCOL: Final = 5

#: Outputs above this size do not go back to the pool: a pickler's memo and
#: internal buffer keep their largest size.
_POOL_MAX_OUTPUT: Final = 1 << 16

#: The bound of ``_LOADED_CLASSES``, so that code making classes in a loop
#: cannot grow it without limit; past the bound it starts afresh.
_LOADED_CLASSES_MAX: Final = 1024
#: How a pickle names an object of ``__main__``: its module as a string.
_MAIN: Final = b"__main__"

_SENT_CLASSES: weakref.WeakKeyDictionary[type, bytes] = weakref.WeakKeyDictionary()
_LOADED_CLASSES: dict[bytes, type] = {}


#: cloudpickle's own set of the modules registered by value, read live: a copy
#: per message (``list_registry_pickle_by_value``) would cost more than the
#: rest of the fast path. ``None`` if a cloudpickle release renames it.
_live = getattr(cloudpickle.cloudpickle, "_PICKLE_BY_VALUE_MODULES", None)
_LIVE_REGISTRY: Final[set[str] | None] = _live if isinstance(_live, set) else None
del _live


def _registry() -> set[str]:
    """The names of the modules registered with ``register_pickle_by_value``."""
    if _LIVE_REGISTRY is not None:
        return _LIVE_REGISTRY
    registry: set[str] = cloudpickle.list_registry_pickle_by_value()
    return registry


def _is_registered(module_name: str, registry: set[str]) -> bool:
    # A module is registered by value if it, or a package above it, is.
    while True:
        if module_name in registry:
            return True
        parent = module_name.rpartition(".")[0]
        if not parent:
            return False
        module_name = parent


def _by_value(obj: Any, registry: set[str]) -> bool:
    """Whether cloudpickle would pickle this class or function by value."""
    module_name = getattr(obj, "__module__", None)
    if module_name is None or module_name == "__main__":
        return True
    if registry and _is_registered(module_name, registry):
        return True
    # Reachable by name from an imported module, as the unpickler will look for it?
    found: Any = sys.modules.get(module_name)
    if found is None:
        return True
    for part in getattr(obj, "__qualname__", obj.__name__).split("."):
        found = getattr(found, part, None)
        if found is None:
            return True
    return found is not obj


def _load_by_value(data: bytes) -> Any:
    """Rebuild a class or function pickled by value (by :func:`_reduce_by_value`)."""
    cached = _LOADED_CLASSES.get(data)
    if cached is not None:
        return cached
    obj = pickle.loads(data)
    if isinstance(obj, type):
        if len(_LOADED_CLASSES) >= _LOADED_CLASSES_MAX:
            _LOADED_CLASSES.clear()
        _LOADED_CLASSES[data] = obj
    return obj


def _reduce_by_value(obj: Any) -> tuple[Any, tuple[bytes]]:
    if isinstance(obj, type):
        data = _SENT_CLASSES.get(obj)
        if data is None:
            data = _SENT_CLASSES[obj] = cloudpickle.dumps(obj, protocol=PROTOCOL)
        return _load_by_value, (data,)
    return _load_by_value, (cloudpickle.dumps(obj, protocol=PROTOCOL),)


class _Sink:
    """What the pickler writes to: its chunks, kept in a list."""

    __slots__ = ("chunks", "write")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.write = self.chunks.append


class _Pickler(pickle.Pickler):
    """The C pickler, handing classes and functions that need it to cloudpickle."""

    def __init__(self) -> None:
        self.sink = _Sink()
        super().__init__(self.sink, protocol=PROTOCOL)

    def reducer_override(self, obj: Any) -> Any:
        # Called for every object but a few builtin types: keep the common
        # "neither a class nor a function" case to two checks.
        if not isinstance(obj, type) and type(obj) is not types.FunctionType:
            return NotImplemented
        if _by_value(obj, _registry()):
            return _reduce_by_value(obj)
        return NotImplemented


_POOL: list[_Pickler] = []


def _unpicklable(obj: object, error: Exception, what: str) -> UnpicklableMessage:
    kind = type(obj)
    name = kind.__qualname__
    if kind.__module__ != "builtins":
        name = f"{kind.__module__}.{name}"
    return UnpicklableMessage(
        f"cannot send {what} of type {name}: it cannot be pickled "
        f"({type(error).__name__}: {error}). Nothing was sent. Send plain data "
        "(numbers, strings, tuples, lists, dicts, dataclasses), or make the type "
        "picklable (define __reduce__ or __getstate__ without locks, sockets, "
        "files or tasks)"
    )


def dumps(obj: object) -> bytes:
    """Pickle a message for another process.

    Protocol 5; classes and functions the other side cannot import by name go
    by value (see the module's docstring).

    Args:
        obj: The message.

    Returns:
        The pickle, for :func:`loads`.

    Raises:
        UnpicklableMessage: ``obj`` (or something in it) cannot be pickled.
            Also a ``TypeError``; the original error is its ``__cause__``.

    Examples:
        >>> loads(dumps(("order", 12345)))
        ('order', 12345)
    """
    # The fast path of benchmarks/wire.py's codec rows: plain pickle, all in C.
    if not (_LIVE_REGISTRY if _LIVE_REGISTRY is not None else _registry()):
        try:
            data = pickle.dumps(obj, PROTOCOL)
        except Exception:
            pass  # perhaps a lambda or a local class: the by-value pickler may do
        else:
            if _MAIN not in data:
                return data
    return _dumps_by_value(obj)


def _dumps_by_value(obj: object) -> bytes:
    try:
        pickler = _POOL.pop()
    except IndexError:
        pickler = _Pickler()
    try:
        pickler.dump(obj)
    except Exception as error:
        # A pickler that failed half-way is dropped, not pooled.
        raise _unpicklable(obj, error, "a message") from error
    chunks = pickler.sink.chunks
    data = chunks[0] if len(chunks) == 1 and type(chunks[0]) is bytes else b"".join(chunks)
    if len(data) <= _POOL_MAX_OUTPUT:
        chunks.clear()
        pickler.clear_memo()
        _POOL.append(pickler)
    return data


def dumps_spec(obj: object) -> bytes:
    """Pickle a spawn spec (an actor class and its arguments) with cloudpickle.

    Args:
        obj: The spec.

    Returns:
        The pickle, for :func:`loads`.

    Raises:
        UnpicklableMessage: ``obj`` cannot be pickled, even by value.

    Examples:
        >>> class Counter:
        ...     pass
        >>> loads(dumps_spec((Counter, (), {})))[0].__name__
        'Counter'
    """
    try:
        data: bytes = cloudpickle.dumps(obj, protocol=PROTOCOL)
    except Exception as error:
        raise _unpicklable(obj, error, "a spawn spec") from error
    return data


def loads(data: bytes | bytearray | memoryview) -> Any:
    """Unpickle what :func:`dumps` or :func:`dumps_spec` made.

    Unpickling runs code the pickle names: call it only on bytes whose sender
    was authenticated (the wire checks every frame's MAC first).

    Args:
        data: The pickle.

    Returns:
        The object.

    Raises:
        Exception: whatever unpickling raises (``pickle.UnpicklingError``, or
            ``ModuleNotFoundError`` when a class's module cannot be imported
            here: register it with ``cloudpickle.register_pickle_by_value``).

    Examples:
        >>> loads(dumps([1, 2, 3]))
        [1, 2, 3]
    """
    return pickle.loads(data)
