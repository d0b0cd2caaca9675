"""ChildSpec, Backoff and the intensity rule on their own: values, defaults,
and the errors bad input gets."""

from __future__ import annotations

import functools
import math
import pickle
from typing import Any

import pytest

from actors import Actor, Mailbox
from supervision import Backoff, ChildSpec, DynamicSupervisor, Supervisor
from supervision._strategy import RestartIntensity, affected


class Worker(Actor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


# -- ChildSpec ------------------------------------------------------------------


def test_spec_keywords_and_factory_arguments_are_kept_apart() -> None:
    spec = ChildSpec(Worker, 1, 2, name="w", restart="transient", shutdown=2.5, size=3)
    assert (spec.factory, spec.args, dict(spec.kwargs)) == (Worker, (1, 2), {"size": 3})
    assert (spec.name, spec.restart, spec.shutdown, spec.significant) == (
        "w",
        "transient",
        2.5,
        False,
    )
    assert (
        repr(spec) == "ChildSpec(Worker, 1, 2, name='w', restart='transient', shutdown=2.5, size=3)"
    )


def test_factory_is_positional_only_so_it_can_take_a_factory_keyword() -> None:
    spec = ChildSpec(Worker, factory="mine")
    assert dict(spec.kwargs) == {"factory": "mine"}


def test_kind_and_default_shutdown_follow_otp() -> None:
    worker, sup, dyn = ChildSpec(Worker), ChildSpec(Supervisor), ChildSpec(DynamicSupervisor)
    assert (worker.kind, sup.kind, dyn.kind) == ("worker", "supervisor", "supervisor")
    assert worker._spawn_shutdown() is None  # the system's default: 5 s
    assert sup._spawn_shutdown() == math.inf
    assert ChildSpec(Worker, shutdown="brutal_kill")._spawn_shutdown() == 0
    assert ChildSpec(Worker, shutdown="infinity")._spawn_shutdown() == math.inf
    assert ChildSpec(Worker, shutdown=math.inf).shutdown == "infinity"


def test_default_names() -> None:
    assert ChildSpec(Worker).default_name == "worker"
    assert ChildSpec(Worker, name="x").default_name == "x"
    assert ChildSpec(functools.partial(Worker, 1)).default_name == "worker"
    with pytest.raises(ValueError, match="needs a name="):
        _ = ChildSpec(lambda: Worker()).default_name


def test_a_partial_of_a_supervisor_is_a_supervisor() -> None:
    # The way to give a sub-supervisor its own backoff: ChildSpec takes backoff=.
    spec = ChildSpec(functools.partial(Supervisor, backoff=Backoff(min=1, max=2)), [])
    assert (spec.kind, spec.default_name, spec._spawn_shutdown()) == (
        "supervisor",
        "supervisor",
        math.inf,
    )


def test_specs_pickle() -> None:
    spec = ChildSpec(Worker, 1, name="w", restart="transient", size=3, subscriptions=["a.b"])
    assert pickle.loads(pickle.dumps(spec)) == spec


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": ""}, ValueError, "non-empty string without '/'"),
        ({"name": "a/b"}, ValueError, "non-empty string without '/'"),
        ({"restart": "always"}, ValueError, "restart must be one of permanent"),
        ({"shutdown": -1}, ValueError, "shutdown must be >= 0"),
        ({"shutdown": "soon"}, TypeError, "'brutal_kill' or 'infinity'"),
        ({"shutdown": True}, TypeError, "'brutal_kill' or 'infinity'"),
        ({"significant": 1}, TypeError, "significant must be True or False"),
        ({"significant": True}, ValueError, "permanent child cannot be significant"),
        ({"mailbox": 10}, TypeError, "actors.Mailbox"),
        ({"backoff": 1.0}, TypeError, "supervision.Backoff"),
        ({"register_as": ""}, ValueError, "ChildSpec register_as: invalid registered name"),
        ({"subscriptions": "a.b"}, TypeError, "write \\['a.b'\\]"),
        ({"subscriptions": [("a", 1)]}, TypeError, "'topic' or \\('topic', group\\)"),
        ({"subscriptions": [""]}, ValueError, "empty topic"),
    ],
)
def test_bad_specs(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        ChildSpec(Worker, **kwargs)


def test_bad_factories() -> None:
    with pytest.raises(TypeError, match=r"not an actors\.Actor subclass"):
        ChildSpec(int)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs an Actor subclass or a callable"):
        ChildSpec("Worker")  # type: ignore[arg-type]


def test_a_mailbox_passes_through() -> None:
    assert ChildSpec(Worker, mailbox=Mailbox(5)).mailbox == Mailbox(5)


# -- Backoff --------------------------------------------------------------------


def test_backoff_delays() -> None:
    backoff = Backoff(min=0.5, max=10, factor=3, jitter=0)
    assert [backoff.delay(n) for n in range(5)] == [0.5, 1.5, 4.5, 10, 10]
    assert backoff.delay(10_000) == 10  # no overflow
    assert backoff.stable_after == 10
    assert Backoff(min=1, max=2, reset_after=30).stable_after == 30


def test_backoff_jitter_is_a_stretch_of_at_most_jitter() -> None:
    backoff = Backoff(min=2, max=8, jitter=0.25)
    assert backoff.delay(0, random=lambda: 0.0) == 2
    assert backoff.delay(0, random=lambda: 0.999) == pytest.approx(2.4995)
    assert backoff.delay(9, random=lambda: 0.5) == pytest.approx(9)  # max * 1.125


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min": 0, "max": 1}, "min must be > 0"),
        ({"min": 2, "max": 1}, "max must be finite and >= min"),
        ({"min": 1, "max": math.inf}, "max must be finite"),
        ({"min": 1, "max": 2, "factor": 0.5}, "factor must be >= 1"),
        ({"min": 1, "max": 2, "jitter": -0.1}, "jitter must be >= 0"),
        ({"min": 1, "max": 2, "reset_after": 0}, "reset_after must be > 0"),
    ],
)
def test_bad_backoffs(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Backoff(**kwargs)
    with pytest.raises(TypeError, match="must be a number"):
        Backoff(min="1", max=2)  # type: ignore[arg-type]


# -- the intensity rule and the strategies ---------------------------------------


def test_intensity_counts_a_window_that_includes_its_edge() -> None:
    intensity = RestartIntensity(max_restarts=3, within=5.0)
    assert [intensity.add(t) for t in (0.0, 1.0, 2.0)] == [True, True, True]
    assert intensity.recent(2.0) == 3
    assert intensity.add(5.0) is False  # 0.0 >= 5.0 - 5.0 still counts
    intensity = RestartIntensity(max_restarts=3, within=5.0)
    assert [intensity.add(t) for t in (0.0, 1.0, 2.0, 5.01)] == [True] * 4


def test_intensity_zero_allows_nothing() -> None:
    assert RestartIntensity(0, 1.0).add(0.0) is False


@pytest.mark.parametrize(
    ("args", "error"),
    [((-1, 5.0), ValueError), ((1.5, 5.0), TypeError), ((1, 0), ValueError), ((1, "5"), TypeError)],
)
def test_bad_intensity(args: tuple[Any, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        RestartIntensity(*args)


def test_affected_children() -> None:
    children = ["a", "b", "c", "d"]
    assert affected("one_for_one", children, "b") == ["b"]
    assert affected("one_for_all", children, "b") == children
    assert affected("rest_for_one", children, "b") == ["b", "c", "d"]
    assert affected("rest_for_one", children, "d") == ["d"]


@pytest.mark.parametrize("name", ["a b", ".x", "x.", "", "ünï"])
def test_register_as_follows_the_registry_rules(name: str) -> None:
    with pytest.raises(ValueError, match="ChildSpec register_as: invalid registered name"):
        ChildSpec(Worker, register_as=name)
    with pytest.raises(TypeError, match="ChildSpec register_as: a registered name must be a str"):
        ChildSpec(Worker, register_as=3)  # type: ignore[arg-type]
