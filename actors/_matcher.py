"""Topic matching: a token trie over subscription patterns, with a cache.

Topics are dotted tokens (``orders.eu.created``). Patterns may use NATS's
wildcards as whole tokens: ``*`` matches exactly one token, ``>`` (last token
only) matches one or more trailing tokens. The trie is built like the NATS
server's subject list: one level per token, with the ``*`` child and the ``>``
values kept apart from the literal children, so matching a topic walks at most
two branches per token instead of scanning every subscription.

# Invariants:
# - A value is stored exactly once, at the node its pattern ends on (or in the
#   ``rest`` of the node before a trailing ``>``); ``_count`` is their number.
# - Nodes without values and without children are pruned on removal, so the
#   trie never holds more nodes than the live patterns need.
# - ``_cache`` maps a concrete topic to ``compile(match(topic))`` for the
#   current contents: inserting or removing a literal pattern drops that one
#   entry, a wildcard pattern drops them all. It never holds more than
#   ``cache_size`` entries (the oldest is evicted first).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Final, Generic, TypeVar

V = TypeVar("V", bound=Hashable)
R = TypeVar("R")

#: How many concrete topics keep their compiled match result.
DEFAULT_CACHE_SIZE: Final = 4096

_EXAMPLE = "e.g. 'orders.eu.created'"
_MISSING: Final = object()


def _check_text(what: str, text: object) -> str:
    if not isinstance(text, str):
        raise TypeError(f"a {what} must be a str of dotted tokens ({_EXAMPLE}), got {text!r}")
    if not text:
        raise ValueError(f"a {what} cannot be empty: use dotted tokens, {_EXAMPLE}")
    return text


def _check_token(what: str, text: str, index: int, token: str) -> None:
    if not token:
        raise ValueError(
            f"invalid {what} {text!r}: token {index + 1} is empty (leading, trailing "
            f"or doubled '.'); use dotted tokens, {_EXAMPLE}"
        )
    # Python counts every whitespace but the ASCII space as unprintable.
    if not token.isprintable() or " " in token:
        raise ValueError(
            f"invalid {what} {text!r}: token {token!r} contains whitespace or a "
            f"control character; use dotted tokens, {_EXAMPLE}"
        )
    if "*" in token or ">" in token:
        raise ValueError(
            f"invalid {what} {text!r}: token {token!r} mixes a wildcard with other "
            f"characters; '*' and '>' are wildcards only as whole tokens "
            f"('orders.*', 'orders.>')"
        )


def check_topic(topic: object) -> list[str]:
    """Validate a concrete topic (what ``publish`` takes) and split it.

    Args:
        topic: dotted tokens, each non-empty, without whitespace or wildcards.

    Returns:
        The tokens.

    Raises:
        TypeError: ``topic`` is not a str.
        ValueError: it is empty, has an empty token, whitespace, or a wildcard
            (publishing needs a concrete topic).

    Examples:
        >>> check_topic("orders.eu.created")
        ['orders', 'eu', 'created']
    """
    if (
        type(topic) is str
        and topic
        and topic.isprintable()
        and " " not in topic
        and "*" not in topic
        and ">" not in topic
        and ".." not in topic
        and topic[:1] != "."
        and topic[-1:] != "."
    ):
        return topic.split(".")  # the common case, checked in one pass
    text = _check_text("topic", topic)
    tokens = text.split(".")
    for index, token in enumerate(tokens):
        if token == "*" or token == ">":
            raise ValueError(
                f"cannot publish to {text!r}: {token!r} is a wildcard, and a message "
                f"goes to a concrete topic; wildcards belong in subscriptions "
                f"(subscribe to 'orders.*', publish to 'orders.eu')"
            )
        _check_token("topic", text, index, token)
    return tokens


def check_pattern(pattern: object) -> list[str]:
    """Validate a subscription pattern and split it.

    Args:
        pattern: dotted tokens; ``*`` matches one token, ``>`` (last token
            only) matches one or more trailing tokens.

    Returns:
        The tokens.

    Raises:
        TypeError: ``pattern`` is not a str.
        ValueError: it is empty, has an empty token or whitespace, ``>`` is
            not the last token, or a wildcard is part of a longer token.

    Examples:
        >>> check_pattern("orders.*.>")
        ['orders', '*', '>']
    """
    text = _check_text("pattern", pattern)
    tokens = text.split(".")
    last = len(tokens) - 1
    for index, token in enumerate(tokens):
        if token == "*":
            continue
        if token == ">":
            if index != last:
                raise ValueError(
                    f"invalid pattern {text!r}: '>' must be the last token (it matches "
                    f"all the remaining tokens); use '*' for a single token in the middle"
                )
            continue
        _check_token("pattern", text, index, token)
    return tokens


def is_literal(tokens: list[str]) -> bool:
    """Whether a checked pattern has no wildcard (it matches one topic only).

    Examples:
        >>> is_literal(["orders", "eu"]), is_literal(["orders", "*"])
        (True, False)
    """
    return "*" not in tokens and ">" not in tokens


def pattern_matches(pattern: str, topic: str) -> bool:
    """Whether ``pattern`` matches the concrete ``topic`` (no checking, no trie).

    The plain definition, token by token; the trie must agree with it.

    Examples:
        >>> pattern_matches("orders.>", "orders.eu.created")
        True
        >>> pattern_matches("orders.*", "orders.eu.created")
        False
    """
    want = pattern.split(".")
    have = topic.split(".")
    for index, token in enumerate(want):
        if token == ">":
            return len(have) > index
        if index >= len(have) or (token != "*" and token != have[index]):
            return False
    return len(want) == len(have)


class _Node(Generic[V]):
    __slots__ = ("children", "rest", "star", "values")

    def __init__(self) -> None:
        self.children: dict[str, _Node[V]] = {}
        self.star: _Node[V] | None = None
        self.values: dict[V, None] = {}  # patterns that end here
        self.rest: dict[V, None] = {}  # patterns that end here with '.>'

    def empty(self) -> bool:
        return not (self.children or self.star or self.values or self.rest)


class Matcher(Generic[V, R]):
    """A token trie from patterns to values, with a cache of compiled matches.

    ``insert(pattern, value)`` stores a value under a pattern; ``match(topic)``
    returns every value whose pattern matches the topic; ``lookup(topic)``
    returns ``compile(match(topic))``, cached per topic until a subscription
    that could change it is inserted or removed. A value may be stored under
    several patterns, but only once under each.

    Args:
        compile: turns the matched values (in trie order) into what
            ``lookup`` returns, such as a delivery plan.
        cache_size: how many topics keep their compiled result.

    Examples:
        >>> m = Matcher(compile=frozenset)
        >>> m.insert("orders.*", "a")
        >>> m.insert("orders.>", "b")
        >>> sorted(m.lookup("orders.eu"))
        ['a', 'b']
        >>> sorted(m.lookup("orders.eu.created"))
        ['b']
    """

    __slots__ = ("_cache", "_cache_size", "_compile", "_count", "_root")

    def __init__(
        self,
        compile: Callable[[list[V]], R],
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size!r}")
        self._root: _Node[V] = _Node()
        self._compile = compile
        self._cache: OrderedDict[str, R] = OrderedDict()
        self._cache_size = cache_size
        self._count = 0

    def __len__(self) -> int:
        """How many (pattern, value) pairs are stored."""
        return self._count

    def __repr__(self) -> str:
        return f"<Matcher {self._count} subscriptions, {len(self._cache)} cached topics>"

    def insert(self, pattern: str, value: V) -> None:
        """Store ``value`` under ``pattern`` (checked); a repeat is a no-op.

        Raises:
            TypeError: ``pattern`` is not a str.
            ValueError: ``pattern`` is invalid (see :func:`check_pattern`).
        """
        tokens = check_pattern(pattern)
        node = self._root
        for token in tokens[:-1] if tokens[-1] == ">" else tokens:
            if token == "*":
                if node.star is None:
                    node.star = _Node()
                node = node.star
            else:
                child = node.children.get(token)
                if child is None:
                    child = node.children[token] = _Node()
                node = child
        bucket = node.rest if tokens[-1] == ">" else node.values
        if value in bucket:
            return
        bucket[value] = None
        self._count += 1
        self._invalidate(pattern, tokens)

    def remove(self, pattern: str, value: V) -> bool:
        """Remove ``value`` from under ``pattern``; False if it was not there.

        Raises:
            TypeError: ``pattern`` is not a str.
            ValueError: ``pattern`` is invalid.
        """
        tokens = check_pattern(pattern)
        trailing = tokens[-1] == ">"
        path: list[tuple[_Node[V], str]] = []
        node: _Node[V] | None = self._root
        for token in tokens[:-1] if trailing else tokens:
            assert node is not None
            path.append((node, token))
            node = node.star if token == "*" else node.children.get(token)
            if node is None:
                return False
        assert node is not None
        bucket = node.rest if trailing else node.values
        if value not in bucket:
            return False
        del bucket[value]
        self._count -= 1
        # Prune the branch bottom-up while it holds nothing.
        while path and node is not None and node.empty():
            parent, token = path.pop()
            if token == "*":
                parent.star = None
            else:
                del parent.children[token]
            node = parent
        self._invalidate(pattern, tokens)
        return True

    def match(self, topic: str) -> list[V]:
        """Every value whose pattern matches the concrete ``topic`` (not cached).

        A value stored under several matching patterns appears once per
        pattern.

        Raises:
            TypeError: ``topic`` is not a str.
            ValueError: ``topic`` is invalid or has a wildcard.
        """
        tokens = check_topic(topic)
        out: list[V] = []
        self._collect(self._root, tokens, 0, out)
        return out

    def lookup(self, topic: str) -> R:
        """``compile(match(topic))``, from the cache when the topic is hot.

        Raises:
            TypeError: ``topic`` is not a str.
            ValueError: ``topic`` is invalid or has a wildcard.
        """
        try:
            result = self._cache.get(topic, _MISSING)
        except TypeError:  # unhashable: match() says what is wrong
            result = _MISSING
        if result is not _MISSING:
            return result  # type: ignore[return-value]
        result = self._compile(self.match(topic))
        cache = self._cache
        if len(cache) >= self._cache_size:
            if not self._cache_size:
                return result
            cache.popitem(last=False)
        cache[topic] = result
        return result

    def patterns(self) -> Iterator[tuple[str, V]]:
        """Every stored ``(pattern, value)`` pair, in trie order."""
        stack: list[tuple[_Node[V], tuple[str, ...]]] = [(self._root, ())]
        while stack:
            node, prefix = stack.pop()
            for value in node.values:
                yield ".".join(prefix), value
            for value in node.rest:
                yield ".".join((*prefix, ">")), value
            if node.star is not None:
                stack.append((node.star, (*prefix, "*")))
            for token, child in reversed(node.children.items()):
                stack.append((child, (*prefix, token)))

    def _invalidate(self, pattern: str, tokens: list[str]) -> None:
        if is_literal(tokens):
            self._cache.pop(pattern, None)
        else:
            self._cache.clear()

    def _collect(self, node: _Node[V], tokens: list[str], index: int, out: list[V]) -> None:
        # Walk literal and '*' branches token by token; '>' values match
        # whenever at least one token is left.
        end = len(tokens)
        while True:
            if node.rest and index < end:
                out.extend(node.rest)
            if index == end:
                out.extend(node.values)
                return
            star = node.star
            child = node.children.get(tokens[index])
            index += 1
            if star is not None:
                if child is not None:
                    self._collect(star, tokens, index, out)
                else:
                    child = star
            if child is None:
                return
            node = child
