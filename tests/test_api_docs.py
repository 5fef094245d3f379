"""The committed API reference (``docs/sdk/api.md``) is what ``scripts/gen_api_docs.py`` makes
of the current docstrings."""

from __future__ import annotations

import difflib
import importlib.util
import inspect
from pathlib import Path
from types import ModuleType

import pytest

import undying

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gen_api_docs.py"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_api_docs", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return load_generator()


def test_committed_api_reference_is_up_to_date(generator: ModuleType) -> None:
    expected: str = generator.render()
    output: Path = generator.OUTPUT
    committed = output.read_text(encoding="utf-8") if output.exists() else ""
    if committed != expected:
        diff = difflib.unified_diff(
            committed.splitlines(), expected.splitlines(), "committed", "generated", lineterm=""
        )
        shown = "\n".join(list(diff)[:60])
        pytest.fail(
            f"{output} is stale: run `.venv/bin/python scripts/gen_api_docs.py` and commit it\n"
            f"{shown}"
        )


def test_every_export_is_documented(generator: ModuleType) -> None:
    text: str = generator.render()
    for name in undying.__all__:
        if not name.startswith("_"):
            assert f"\n### {name}\n" in text, name
            assert f"](#{name.lower()})" in text, f"{name} is missing from the contents"


def test_docstrings_become_markdown(generator: ModuleType) -> None:
    doc = """Wait for ``x``; see :class:`~undying.errors.TerminalError` and :meth:`Service.handler`.

    Example::

        await ctx.sleep(1)

    Args:
        first: a long description
            that goes on.
        *args: more.

    Raises:
        TerminalError: when it fails.
    """
    documented = frozenset({"TerminalError", "Service"})

    text = generator.markdown(inspect.cleandoc(doc), documented)

    assert text == (
        "Wait for `x`; see [`TerminalError`](#terminalerror) and "
        "[`Service.handler`](#servicehandler).\n"
        "\n"
        "Example:\n"
        "\n"
        "```python\n"
        "await ctx.sleep(1)\n"
        "```\n"
        "\n"
        "**Args:**\n"
        "\n"
        "- `first`: a long description that goes on.\n"
        "- `*args`: more.\n"
        "\n"
        "**Raises:**\n"
        "\n"
        "- `TerminalError`: when it fails.\n"
    )
