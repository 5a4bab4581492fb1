"""Argument checks: each failure is an InvalidInput naming the field and the limit."""

from __future__ import annotations

import math

import pytest

from engram import validation as check
from engram.errors import ContentTooLarge, InvalidInput


@pytest.mark.parametrize("value", ["k", "a" * 256, "with space", "ünïcødé 🔑", "a/b:c.d-e_f"])
def test_name_accepts(value):
    assert check.name("key", value) == value


@pytest.mark.parametrize(
    "value, message",
    [
        ("", "key must not be empty"),
        ("a" * 257, "key is 257 characters; the limit is 256"),
        (5, "key must be a string, not int"),
        (None, "key must be a string, not NoneType"),
        (b"k", "key must be a string, not bytes"),
        ("a\x00", "key contains control character '\\x00' at position 1; use printable characters only"),
        ("\tx", "key contains control character '\\t' at position 0; use printable characters only"),
        ("x\x7f", "key contains control character '\\x7f' at position 1; use printable characters only"),
        ("x\x85", "key contains control character '\\x85' at position 1; use printable characters only"),
        ("x\ud800", "key contains control character '\\ud800' at position 1; use printable characters only"),
    ],
)
def test_name_rejects(value, message):
    with pytest.raises(InvalidInput) as info:
        check.name("key", value)
    assert str(info.value) == message


def test_name_uses_the_field_name():
    with pytest.raises(InvalidInput, match="^namespace must not be empty$"):
        check.name("namespace", "")


def test_content_limit_is_in_utf8_bytes():
    assert check.content("é" * 50, 100) == "é" * 50
    with pytest.raises(ContentTooLarge) as info:
        check.content("é" * 51, 100)
    assert str(info.value) == "content is 102 bytes; the limit is 100 bytes (setting max_content_bytes)"
    assert isinstance(info.value, InvalidInput)


def test_content_allows_control_characters_and_empty():
    assert check.content("", 10) == ""
    assert check.content("a\x00\nb", 10) == "a\x00\nb"


@pytest.mark.parametrize("value, word", [(None, "NoneType"), (b"x", "bytes"), (1, "int")])
def test_content_must_be_a_string(value, word):
    with pytest.raises(InvalidInput, match=f"content must be a string, not {word}"):
        check.content(value, 10)


def test_content_with_a_lone_surrogate():
    with pytest.raises(InvalidInput, match="unpaired surrogate at position 1"):
        check.content("a\udc80", 10)


def test_json_value():
    assert check.json_value("input", {"a": [1, "é"]}, 100) == '{"a":[1,"é"]}'
    with pytest.raises(InvalidInput, match="input must be JSON"):
        check.json_value("input", {1, 2}, 100)
    with pytest.raises(InvalidInput, match="input must be JSON"):
        check.json_value("input", math.inf, 100)
    with pytest.raises(ContentTooLarge, match="input is 12 bytes as JSON; the limit is 10 bytes"):
        check.json_value("input", "x" * 10, 10)
    with pytest.raises(InvalidInput, match="surrogate"):
        check.json_value("input", "\ud800", 100)


def test_metadata():
    assert check.metadata(None, 100) == {}
    assert check.metadata({"a": {"b": [1]}}, 100) == {"a": {"b": [1]}}
    with pytest.raises(InvalidInput, match="metadata must be a JSON object \\(dict\\), not list"):
        check.metadata([], 100)
    with pytest.raises(InvalidInput, match="metadata keys must be strings, got 1"):
        check.metadata({1: "x"}, 100)
    with pytest.raises(ContentTooLarge, match="metadata is .* bytes as JSON; the limit is 10 bytes"):
        check.metadata({"k": "x" * 20}, 10)


@pytest.mark.parametrize(
    "value",
    [None, {}, {"a": 1}, {"a.b.c": "x"}, {"_x-1": True}, {"n": None}, {"f": 1.5}, {"a" * 64: 1}],
)
def test_metadata_filter_accepts(value):
    assert check.metadata_filter(value) == (value or {})


@pytest.mark.parametrize(
    "value, words",
    [
        ([("a", 1)], ["metadata filter must be a dict"]),
        ({"": 1}, ["''", "not allowed"]),
        ({"a b": 1}, ["'a b'", "not allowed"]),
        ({"a.": 1}, ["not allowed"]),
        ({".a": 1}, ["not allowed"]),
        ({"a..b": 1}, ["not allowed"]),
        ({'a"b': 1}, ["not allowed"]),
        ({"a'b": 1}, ["not allowed"]),
        ({"$.a": 1}, ["not allowed"]),
        ({"a" * 65: 1}, ["not allowed", "64"]),
        ({".".join(["a"] * 9): 1}, ["not allowed"]),
        ({1: 1}, ["not allowed"]),
        ({"a": [1]}, ["'a'", "string, number, bool or null", "list"]),
        ({"a": {"b": 1}}, ["dict"]),
        ({"a": float("inf")}, ["finite"]),
        ({"a": float("nan")}, ["finite"]),
    ],
)
def test_metadata_filter_rejects(value, words):
    with pytest.raises(InvalidInput) as info:
        check.metadata_filter(value)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("value, expected", [(None, None), (1, 1.0), (0.5, 0.5), (check.MAX_TTL_SECONDS, float(check.MAX_TTL_SECONDS))])
def test_ttl_accepts(value, expected):
    assert check.ttl(value) == expected


@pytest.mark.parametrize(
    "value, message",
    [
        (0, "ttl must be between 0 and 3153600000 seconds (100 years), got 0"),
        (-1, "ttl must be between 0 and 3153600000 seconds (100 years), got -1"),
        (check.MAX_TTL_SECONDS + 1, "ttl must be between 0 and 3153600000 seconds (100 years), got 3153600001"),
        (True, "ttl must be a number of seconds, not True"),
        ("10", "ttl must be a number of seconds, not '10'"),
        (float("nan"), "ttl must be a number of seconds, not nan"),
        (float("inf"), "ttl must be a number of seconds, not inf"),
    ],
)
def test_ttl_rejects(value, message):
    with pytest.raises(InvalidInput) as info:
        check.ttl(value)
    assert str(info.value) == message


def test_limit_and_offset():
    assert check.limit(1) == 1
    assert check.limit(check.MAX_LIMIT) == check.MAX_LIMIT
    for bad in (0, -1, check.MAX_LIMIT + 1, 1.0, "1", True, None):
        with pytest.raises(InvalidInput, match=f"limit must be a whole number from 1 to {check.MAX_LIMIT}"):
            check.limit(bad)
    assert check.offset(0) == 0
    for bad in (-1, 1.5, "0", False):
        with pytest.raises(InvalidInput, match="offset must be a whole number >= 0"):
            check.offset(bad)


def test_choice():
    assert check.choice("status", "ended", ("ended", "error")) == "ended"
    with pytest.raises(InvalidInput, match="status must be one of ended, error; got 'bogus'"):
        check.choice("status", "bogus", ("ended", "error"))


def test_identifier():
    assert check.identifier("task id", "abc") == "abc"
    with pytest.raises(InvalidInput, match="task id must not be empty"):
        check.identifier("task id", "")
