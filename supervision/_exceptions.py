"""Errors of the supervision package, all rooted at ``actors.ActorsError``.

A supervisor that gives up raises ``actors.SupervisorGaveUp`` (it lives in
``actors`` because the design names it there); the errors below answer the
runtime-control calls (``start_child``, ``terminate_child``, ...) and a
supervisor that cannot start its children.
"""

from __future__ import annotations

from actors import ActorsError


class ChildStartFailed(ActorsError):
    """A child's ``on_start`` (or its factory) raised, so the child did not start.

    OTP's ``{failed_to_start_child, Id, Reason}``. Raised by ``start_child`` and
    ``restart_child``, and by a supervisor's own start when one of its children
    fails to start (then the children started before it have been stopped, in
    reverse order). ``__cause__`` is the ``ActorFailed`` from the spawn, whose
    ``__cause__`` is the child's own exception.

    Attributes:
        supervisor: the path of the supervisor.
        child: the name of the child that failed to start.

    Examples:
        >>> error = ChildStartFailed("/user/sup", "db", "it raised")
        >>> (error.supervisor, error.child)
        ('/user/sup', 'db')
    """

    def __init__(self, supervisor: str, child: str, message: str) -> None:
        super().__init__(message)
        self.supervisor = supervisor
        self.child = child


class NoSuchChild(ActorsError, LookupError):
    """The supervisor has no child by that name (or that ref). Also a ``LookupError``.

    OTP's ``{error, not_found}``.

    Examples:
        >>> issubclass(NoSuchChild, LookupError)
        True
    """


class ChildRunning(ActorsError):
    """The child is running or waiting to restart, so it cannot be deleted or
    restarted by hand: terminate it first.

    OTP's ``{error, running}`` and ``{error, restarting}``.

    Examples:
        >>> import actors
        >>> issubclass(ChildRunning, actors.ActorsError)
        True
    """


class TooManyChildren(ActorsError):
    """A ``DynamicSupervisor`` already has ``max_children`` children.

    OTP's ``{error, max_children}``; nothing was started.

    Examples:
        >>> import actors
        >>> issubclass(TooManyChildren, actors.ActorsError)
        True
    """
