"""The state version the official CLI sends with ``restate state patch`` / ``state clear``."""

from __future__ import annotations

from undying.server.partition.state_version import state_version


def test_versions_the_cli_sent_to_restate_server() -> None:
    # captured: `restate state patch Counter bob` on {count: "1"}, `state clear` on {count: "41"}
    assert state_version({b"count": b"1"}) == "c5BzwkDXJZKb3faKSDXzDBnHKylbEnJsnt0tSeeSKps"
    assert state_version({b"count": b"41"}) == "4EgLLfrJfo_ziUM4-B0zSnGqjtxcr9bjropDyMi1xnQ"


def test_the_version_depends_on_every_entry_not_on_their_order() -> None:
    one = state_version({b"a": b"1", b"b": b"2"})
    assert one == state_version({b"b": b"2", b"a": b"1"})
    assert one != state_version({b"a": b"1", b"b": b"3"})
    assert one != state_version({b"a": b"1"})
    # framing: moving bytes between key and value changes the version
    assert state_version({b"ab": b"c"}) != state_version({b"a": b"bc"})
