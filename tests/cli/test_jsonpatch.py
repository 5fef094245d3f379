"""JSON Patch (RFC 6902), with examples of the RFC's appendix A."""

from __future__ import annotations

from typing import Any

import pytest

from undying.cli.jsonpatch import PatchError, apply_patch


@pytest.mark.parametrize(
    ("doc", "patch", "expected"),
    [
        (
            {"foo": "bar"},
            [{"op": "add", "path": "/baz", "value": "qux"}],
            {"baz": "qux", "foo": "bar"},
        ),
        (
            {"foo": ["bar", "baz"]},
            [{"op": "add", "path": "/foo/1", "value": "qux"}],
            {"foo": ["bar", "qux", "baz"]},
        ),
        ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
        (
            {"foo": ["bar", "qux", "baz"]},
            [{"op": "remove", "path": "/foo/1"}],
            {"foo": ["bar", "baz"]},
        ),
        (
            {"baz": "qux", "foo": "bar"},
            [{"op": "replace", "path": "/baz", "value": "boo"}],
            {"baz": "boo", "foo": "bar"},
        ),
        (
            {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
            [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
            {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
        ),
        (
            {"foo": ["bar"]},
            [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
            {"foo": ["bar", ["abc", "def"]]},
        ),
        (
            {"a/b": 1, "m~n": 2},
            [{"op": "copy", "from": "/a~1b", "path": "/m~0n"}],
            {"a/b": 1, "m~n": 1},
        ),
        ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "qux"}], {"baz": "qux"}),
    ],
)
def test_applies(doc: Any, patch: Any, expected: Any) -> None:
    assert apply_patch(doc, patch) == expected


@pytest.mark.parametrize(
    "patch",
    [
        {"op": "add"},
        [{"op": "add", "path": "/a"}],
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "/missing", "value": 1}],
        [{"op": "test", "path": "/baz", "value": "nope"}],
        [{"op": "add", "path": "/foo/5", "value": 1}],
        [{"op": "add", "path": "/foo/01", "value": 1}],
        [{"op": "add", "path": "no-slash", "value": 1}],
        [{"op": "frobnicate", "path": "/baz"}],
        [{"op": "move", "from": "/foo", "path": "/foo/0"}],
        [{"op": "remove", "path": ""}],
    ],
)
def test_refuses(patch: Any) -> None:
    doc = {"baz": "qux", "foo": ["bar"]}
    with pytest.raises(PatchError):
        apply_patch(doc, patch)
    assert doc == {"baz": "qux", "foo": ["bar"]}  # never modified


def test_a_failed_patch_leaves_the_document_alone() -> None:
    doc = {"a": 1}
    with pytest.raises(PatchError, match="operation 2"):
        apply_patch(doc, [{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/c"}])
    assert doc == {"a": 1}
