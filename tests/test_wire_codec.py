"""The codec: pickle protocol 5, by value where the other side could not import
by name, and a clear error for what cannot be pickled."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from actors import ActorsError
from actors._codec import dumps, dumps_spec, loads
from actors._exceptions import UnpicklableMessage


@dataclasses.dataclass(frozen=True)
class Order:
    id: int
    sku: str


def test_plain_data_round_trips_as_pickle_protocol_5() -> None:
    message = {"order": Order(1, "ABC"), "items": [1.5, b"x", ("t", None)]}
    data = dumps(message)
    assert data[:2] == b"\x80\x05"
    assert loads(data) == message
    # An importable class goes by reference: the same bytes plain pickle makes.
    assert data == pickle.dumps(message, protocol=5)


def test_text_that_merely_says_main_round_trips() -> None:
    message = {"__main__": "__main__", "order": Order(1, "__main__")}
    assert loads(dumps(message)) == message


def test_lambdas_and_local_classes_go_by_value() -> None:
    class Local:
        def __init__(self, n: int) -> None:
            self.n = n

    offset = 10
    add = loads(dumps(lambda x: x + offset))
    local = loads(dumps(Local(3)))
    assert add(1) == 11
    assert local.n == 3 and type(local).__qualname__.endswith("Local")


def test_a_class_sent_twice_is_the_same_class_on_arrival() -> None:
    class Point:
        pass

    first, second = loads(dumps(Point())), loads(dumps(Point()))
    assert type(first) is type(second)


def test_repeated_references_in_one_message_stay_shared() -> None:
    shared = [1, 2]
    a, b = loads(dumps((shared, shared)))
    assert a is b


def test_a_reduce_that_pickles_again_gets_its_own_pickler() -> None:
    class Nested:
        def __reduce__(self) -> tuple[Any, ...]:
            return (loads, (dumps(("inner", Order(2, "B"))),))

    assert loads(dumps(["outer", Nested(), Order(3, "C")])) == [
        "outer",
        ("inner", Order(2, "B")),
        Order(3, "C"),
    ]


def test_a_module_registered_by_value_travels_by_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "wire_codec_fresh_module"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            class Thing:
                def __init__(self, n):
                    self.n = n

                def doubled(self):
                    return 2 * self.n
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__(name)
    monkeypatch.setitem(sys.modules, name, module)  # removed again at the end
    by_reference = dumps(module.Thing(1))  # before registering: by name (and cached so)
    cloudpickle.register_pickle_by_value(module)
    try:
        data = dumps(module.Thing(21))
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    # Now as if in a process that cannot import the module.
    sys.path.remove(str(tmp_path))
    del sys.modules[name]
    assert loads(data).doubled() == 42
    with pytest.raises(ModuleNotFoundError):
        loads(by_reference)


def test_main_classes_and_functions_travel_by_value(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import dataclasses, sys
            from actors._codec import dumps

            @dataclasses.dataclass
            class Point:
                x: int
                y: int

                def norm1(self):
                    return abs(self.x) + abs(self.y)

            def double(value):
                return 2 * value

            sys.stdout.write(dumps((Point(3, -4), double)).hex())
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=tmp_path,
    ).stdout
    point, double = loads(bytes.fromhex(out))
    # This process's __main__ is pytest's: only by value could these arrive.
    assert type(point).__module__ == "__main__"
    assert point.norm1() == 7
    assert double(21) == 42


def test_an_unpicklable_message_fails_naming_its_type() -> None:
    @dataclasses.dataclass
    class Holder:
        lock: Any

    with pytest.raises(UnpicklableMessage) as caught:
        dumps(Holder(threading.Lock()))
    text = str(caught.value)
    assert "Holder" in text and "lock" in text and "Nothing was sent" in text
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, ActorsError)
    assert caught.value.__cause__ is not None
    # The codec is still usable afterwards.
    assert loads(dumps([1])) == [1]


def test_a_failing_getstate_is_reported_as_unpicklable() -> None:
    class Refuses:
        def __getstate__(self) -> None:
            raise ValueError("no")

    with pytest.raises(UnpicklableMessage, match=r"Refuses.*ValueError: no"):
        dumps(Refuses())


def test_spawn_specs_always_go_through_cloudpickle() -> None:
    spec = (Order, (1,), {"sku": "A"})
    data = dumps_spec(spec)
    assert loads(data) == spec
    with pytest.raises(UnpicklableMessage, match="spawn spec"):
        dumps_spec((Order, (threading.Lock(),), {}))
