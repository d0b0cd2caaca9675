"""The topic trie against the plain token-by-token definition, and checking."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors._matcher import (
    Matcher,
    check_pattern,
    check_topic,
    is_literal,
    pattern_matches,
)


def reference(pattern: str, topic: str) -> bool:
    """The definition: split on dots, compare token by token."""
    want, have = pattern.split("."), topic.split(".")
    for index, token in enumerate(want):
        if token == ">":
            return len(have) > index
        if index >= len(have):
            return False
        if token != "*" and token != have[index]:
            return False
    return len(want) == len(have)


TOKENS = ["a", "b", "c"]
topics = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=5).map(".".join)


@st.composite
def patterns(draw: st.DrawFn) -> str:
    tokens = draw(st.lists(st.sampled_from([*TOKENS, "*"]), min_size=0, max_size=4))
    if not tokens or draw(st.booleans()):
        tokens.append(draw(st.sampled_from([*TOKENS, "*", ">"])))
    elif draw(st.integers(0, 3)) == 0:
        tokens.append(">")
    return ".".join(tokens)


def frozen(values: list[int]) -> frozenset[int]:
    return frozenset(values)


@settings(max_examples=300, deadline=None)
@given(st.lists(patterns(), max_size=30), st.lists(topics, min_size=1, max_size=20))
def test_the_trie_agrees_with_the_reference(pats: list[str], tops: list[str]) -> None:
    matcher: Matcher[int, frozenset[int]] = Matcher(frozen)
    for index, pattern in enumerate(pats):
        matcher.insert(pattern, index)
    for topic in tops:
        expected = {i for i, p in enumerate(pats) if reference(p, topic)}
        assert set(matcher.match(topic)) == expected
        assert sorted(matcher.match(topic)) == sorted(expected)  # each value once
        assert matcher.lookup(topic) == expected
        assert {i for i, p in enumerate(pats) if pattern_matches(p, topic)} == expected


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), patterns(), st.integers(0, 5)),
        min_size=1,
        max_size=60,
    ),
    st.lists(topics, min_size=1, max_size=8),
)
def test_the_cache_follows_inserts_and_removals(
    steps: list[tuple[bool, str, int]], tops: list[str]
) -> None:
    matcher: Matcher[int, frozenset[int]] = Matcher(frozen, cache_size=4)
    live: set[tuple[str, int]] = set()
    for insert, pattern, value in steps:
        if insert:
            matcher.insert(pattern, value)
            live.add((pattern, value))
        else:
            assert matcher.remove(pattern, value) == ((pattern, value) in live)
            live.discard((pattern, value))
        assert len(matcher) == len(live)
        for topic in tops:  # warm the cache, then check it after the next step
            expected = {v for p, v in live if reference(p, topic)}
            assert matcher.lookup(topic) == expected
    assert sorted(matcher.patterns()) == sorted(live)
    for pattern, value in list(live):
        assert matcher.remove(pattern, value)
    assert len(matcher) == 0
    assert matcher._root.empty()  # pruned all the way back


def valid_topic(text: str) -> bool:
    """The definition: non-empty tokens, no whitespace, control characters or
    wildcard characters."""
    return all(
        token and token.isprintable() and not any(c.isspace() or c in "*>" for c in token)
        for token in text.split(".")
    )


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=["a", "b", ".", "*", ">", " ", "\t", "é", "\x00", "\u00a0"], max_size=8))
def test_topic_checking_agrees_with_the_definition(text: str) -> None:
    try:
        tokens = check_topic(text)
    except ValueError:
        assert not valid_topic(text)
    else:
        assert valid_topic(text)
        assert tokens == text.split(".")


def test_examples_of_the_wildcards() -> None:
    matcher: Matcher[str, frozenset[str]] = Matcher(frozenset)
    for pattern in ["orders.*.created", "orders.>", "orders.*", ">", "*", "orders"]:
        matcher.insert(pattern, pattern)
    assert matcher.lookup("orders") == {"orders", ">", "*"}
    assert matcher.lookup("orders.eu") == {"orders.>", "orders.*", ">"}
    assert matcher.lookup("orders.eu.created") == {"orders.*.created", "orders.>", ">"}
    assert matcher.lookup("orders.eu.created.late") == {"orders.>", ">"}
    assert matcher.lookup("invoices.eu") == {">"}


def test_inserting_twice_stores_once() -> None:
    matcher: Matcher[str, frozenset[str]] = Matcher(frozenset)
    matcher.insert("a.*", "x")
    matcher.insert("a.*", "x")
    assert len(matcher) == 1
    assert matcher.match("a.b") == ["x"]
    assert matcher.remove("a.*", "x")
    assert not matcher.remove("a.*", "x")
    assert not matcher.remove("a.b.c", "x")


def test_a_literal_change_keeps_other_cached_topics() -> None:
    compiled: list[str] = []

    def compile(values: list[str]) -> tuple[str, ...]:
        compiled.append(",".join(values))
        return tuple(values)

    matcher: Matcher[str, tuple[str, ...]] = Matcher(compile)
    matcher.insert("a.b", "1")
    matcher.lookup("a.b")
    matcher.lookup("a.c")
    assert len(compiled) == 2
    matcher.insert("a.c", "2")  # literal: only "a.c" is recompiled
    assert matcher.lookup("a.b") == ("1",)
    assert matcher.lookup("a.c") == ("2",)
    assert len(compiled) == 3
    matcher.insert("a.*", "3")  # wildcard: everything is
    assert set(matcher.lookup("a.b")) == {"1", "3"}
    assert len(compiled) == 4


def test_the_cache_stays_bounded() -> None:
    matcher: Matcher[str, frozenset[str]] = Matcher(frozenset, cache_size=3)
    matcher.insert(">", "all")
    for i in range(10):
        assert matcher.lookup(f"t{i}") == {"all"}
    assert len(matcher._cache) == 3
    uncached: Matcher[str, frozenset[str]] = Matcher(frozenset, cache_size=0)
    uncached.insert(">", "all")
    assert uncached.lookup("t") == {"all"}
    assert not uncached._cache
    with pytest.raises(ValueError, match="cache_size"):
        Matcher(frozenset, cache_size=-1)


@pytest.mark.parametrize(
    ("topic", "error", "words"),
    [
        ("", ValueError, "cannot be empty"),
        ("orders..eu", ValueError, "token 2 is empty"),
        (".orders", ValueError, "token 1 is empty"),
        ("orders.", ValueError, "token 2 is empty"),
        ("orders.e u", ValueError, "whitespace"),
        ("orders.eu\n", ValueError, "whitespace"),
        ("orders.*", ValueError, "cannot publish to 'orders.\\*'"),
        ("orders.>", ValueError, "'>' is a wildcard"),
        ("orders.e*", ValueError, "whole tokens"),
        (42, TypeError, "must be a str"),
        (None, TypeError, "must be a str"),
    ],
)
def test_bad_topics_get_clear_errors(topic: object, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        check_topic(topic)


@pytest.mark.parametrize(
    ("pattern", "error", "words"),
    [
        ("", ValueError, "cannot be empty"),
        ("orders..*", ValueError, "token 2 is empty"),
        ("orders.>.eu", ValueError, "'>' must be the last token"),
        (">.orders", ValueError, "'>' must be the last token"),
        ("orders.a>", ValueError, "whole tokens"),
        ("orders. eu", ValueError, "whitespace"),
        (b"orders", TypeError, "must be a str"),
    ],
)
def test_bad_patterns_get_clear_errors(pattern: object, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        check_pattern(pattern)


def test_good_patterns_and_topics() -> None:
    assert check_pattern(">") == [">"]
    assert check_pattern("*.*") == ["*", "*"]
    assert check_topic("orders.eu-1.created_at") == ["orders", "eu-1", "created_at"]
    assert is_literal(check_pattern("a.b"))
    assert not is_literal(check_pattern("a.>"))


def test_match_checks_the_topic() -> None:
    matcher: Matcher[str, frozenset[str]] = Matcher(frozenset)
    with pytest.raises(ValueError, match="wildcard"):
        matcher.lookup("orders.*")
    with pytest.raises(TypeError, match="must be a str"):
        matcher.lookup(["orders"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be the last"):
        matcher.insert("a.>.b", "x")
