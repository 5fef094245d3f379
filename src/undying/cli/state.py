"""``undying state``: read and edit the K/V state of a virtual object or workflow key.

Values are bytes; the CLI shows them as JSON when they are JSON (what the SDKs' default serde
writes), else as text. Edits go through ``POST /services/{service}/state``, which replaces the
key's whole state; the request carries the *version* of the state it was computed from (a hash
of the current keys and values, computed as restate-server does), so a server that checks it
refuses an edit made over a state that changed meanwhile. ``--force`` leaves it out.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from undying.cli import queries
from undying.cli.admin_client import AdminClient, path_segment
from undying.cli.jsonpatch import PatchError, apply_patch
from undying.cli.options import (
    Output,
    admin_url_option,
    confirm,
    connect,
    output_option,
    yes_option,
)
from undying.cli.render import console, emit_json, table, text

__all__ = ["decode_value", "state", "state_version"]

_KEYED = frozenset({"VirtualObject", "Workflow"})


@click.group()
def state() -> None:
    """Read and edit the state of a virtual object (or workflow) key."""


def state_version(entries: Mapping[bytes, bytes]) -> str:
    """The version of a key's state: SHA-256 over the entries sorted by key (index, key and
    value framed by 0x01/0x02/0x03), URL-safe base64 without padding."""
    digest = hashlib.sha256()
    for i, (k, v) in enumerate(sorted(entries.items())):
        digest.update(i.to_bytes(8, "big"))
        digest.update(b"\x01" + k + b"\x02" + v + b"\x03")
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def decode_value(raw: bytes) -> tuple[Any, bool]:
    """``(value, is_json)``: the JSON value of ``raw``, else its text (``None`` if binary)."""
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, False
    try:
        return json.loads(decoded), True
    except ValueError:
        return decoded, False


def _read(admin: AdminClient, service: str, key: str) -> dict[bytes, bytes]:
    svc = admin.get_json(f"/services/{path_segment(service)}")
    if svc.get("ty") not in _KEYED:
        raise click.ClickException(
            f"{service} is a {svc.get('ty')}: only virtual objects and workflows have state"
        )
    rows = admin.query(queries.object_state(service, key))
    return {str(r["key"]).encode(): bytes.fromhex(str(r.get("value") or "")) for r in rows}


def _shown(raw: bytes) -> Any:
    value, is_json = decode_value(raw)
    if is_json:
        return text(json.dumps(value, ensure_ascii=False))
    if value is None:
        return text(f"0x{raw.hex()} (binary)", "dim")
    return text(value)


def _print_state(entries: Mapping[bytes, bytes]) -> None:
    rows = [[k.decode("utf-8", "replace"), _shown(v)] for k, v in sorted(entries.items())]
    console().print(table(["KEY", "VALUE"], rows, no_wrap=(0,)))


def _as_json(service: str, key: str, entries: Mapping[bytes, bytes]) -> dict[str, Any]:
    values = {k.decode("utf-8", "replace"): decode_value(v)[0] for k, v in sorted(entries.items())}
    return {
        "service": service,
        "key": key,
        "version": state_version(entries),
        "state": values,
        "raw": {k.decode("utf-8", "replace"): v.hex() for k, v in sorted(entries.items())},
    }


@state.command()
@click.argument("service")
@click.argument("key")
@admin_url_option
@output_option
def get(service: str, key: str, admin_url: str | None, output: Output) -> None:
    """The state of SERVICE's KEY (a virtual object or a workflow).

    JSON: {"service", "key", "version", "state": {name: JSON value, or text if the value is
    not JSON, or null if it is binary}, "raw": {name: hex of the bytes}}.
    """
    admin = connect(admin_url)
    entries = _read(admin, service, key)
    if output == "json":
        emit_json(_as_json(service, key, entries))
        return
    if not entries:
        console(err=True).print(text(f"{service}/{key} has no state."))
        return
    _print_state(entries)


def _write(
    admin: AdminClient,
    service: str,
    key: str,
    before: Mapping[bytes, bytes],
    after: Mapping[bytes, bytes],
    *,
    force: bool,
) -> None:
    body: dict[str, Any] = {
        "object_key": key,
        "new_state": {k.decode("utf-8", "replace"): list(v) for k, v in after.items()},
    }
    if not force:
        body = {"version": state_version(before), **body}
    admin.request("POST", f"/services/{path_segment(service)}/state", body)


def _load_patch(value: str) -> Any:
    if value.startswith("@"):
        value = Path(value[1:]).read_text(encoding="utf-8")
    try:
        return json.loads(value)
    except ValueError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint="--patch") from None


@state.command()
@click.argument("service")
@click.argument("key")
@click.option(
    "--patch",
    "patch_text",
    required=True,
    metavar="JSON",
    help='A JSON patch, e.g. \'[{"op": "replace", "path": "/count", "value": 41}]\' (or @FILE).',
)
@click.option("--force", is_flag=True, help="Do not check that the state is unchanged meanwhile.")
@yes_option
@admin_url_option
@output_option
def patch(
    service: str,
    key: str,
    patch_text: str,
    force: bool,
    yes: bool,
    admin_url: str | None,
    output: Output,
) -> None:
    """Edit SERVICE's KEY state with a JSON patch (RFC 6902) over its JSON view.

    Values the patch leaves alone keep their bytes; new and changed ones are written as JSON.
    JSON output: the new state, as `state get` prints it.
    """
    operations = _load_patch(patch_text)
    admin = connect(admin_url)
    before = _read(admin, service, key)
    view = {k.decode("utf-8", "replace"): decode_value(v)[0] for k, v in before.items()}
    try:
        changed = apply_patch(view, operations)
    except PatchError as e:
        raise click.ClickException(f"the patch does not apply to {service}/{key}: {e}") from None
    if not isinstance(changed, dict):
        raise click.ClickException("the patched state must be an object of keys to values")
    after: dict[bytes, bytes] = {}
    for name, value in changed.items():
        raw = name.encode()
        if raw in before and view.get(name) == value:
            after[raw] = before[raw]
        else:
            after[raw] = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    if after == before:
        console(err=True).print(text(f"The patch changes nothing in {service}/{key}."))
        return
    err = console(err=True)
    for name in sorted(set(view) | set(changed)):
        if name not in changed:
            err.print(text(f"  - {name}: {json.dumps(view[name])}", "red"))
        elif name not in view:
            err.print(text(f"  + {name}: {json.dumps(changed[name])}", "green"))
        elif view[name] != changed[name]:
            line = f"  ~ {name}: {json.dumps(view[name])} -> {json.dumps(changed[name])}"
            err.print(text(line, "yellow"))
    confirm(f"Write this state to {service}/{key}?", yes=yes)
    _write(admin, service, key, before, after, force=force)
    if output == "json":
        emit_json(_as_json(service, key, after))
        return
    err.print(text(f"Updated the state of {service}/{key}.", "green"))
    _print_state(after)


@state.command()
@click.argument("service")
@click.argument("key")
@click.option("--force", is_flag=True, help="Do not check that the state is unchanged meanwhile.")
@yes_option
@admin_url_option
def clear(service: str, key: str, force: bool, yes: bool, admin_url: str | None) -> None:
    """Delete every state entry of SERVICE's KEY."""
    admin = connect(admin_url)
    before = _read(admin, service, key)
    if not before:
        console(err=True).print(text(f"{service}/{key} has no state."))
        return
    _print_state(before)
    confirm(f"Clear these {len(before)} entries of {service}/{key}?", yes=yes)
    _write(admin, service, key, before, {}, force=force)
    console(err=True).print(text(f"Cleared the state of {service}/{key}.", "green"))
