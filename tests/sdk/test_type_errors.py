"""The SDK's types refuse misuse and accept idiomatic code, under pyright and mypy (strict).

``typecheck/misuse.py`` marks each misuse with the errors both checkers must report on the next
code line (``# assert-type-error-pyright: '<regex>'``, ``# assert-type-error-mypy: '<regex>'``);
any other error there, or any error at all in ``typecheck/correct.py``, fails. What the types
cannot express is refused at run time or definition time, checked here and in
``test_definitions.py``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import subprocess
import sys
import tokenize
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import undying
from undying import ObjectContext, ObjectSharedContext, WorkflowContext, WorkflowSharedContext
from undying.testing.paths import node_binary, node_modules

ROOT = Path(__file__).resolve().parents[2]
TYPECHECK = Path(__file__).resolve().parent / "typecheck"
MISUSE = TYPECHECK / "misuse.py"
CORRECT = TYPECHECK / "correct.py"
CHECKERS = ("pyright", "mypy")

_MARK = re.compile(r"#\s*assert-type-error-(?P<checker>[a-z]+):\s*'(?P<regex>.*)'\s*")
_ONLY = re.compile(r"#\s*only-(?P<checker>[a-z]+):\s*\S")
_NOT_CODE = frozenset(
    {
        tokenize.COMMENT,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENCODING,
        tokenize.ENDMARKER,
    }
)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One diagnostic of a checker: where, and what it says."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(slots=True)
class Expected:
    """The regexes each checker's errors on one line must match (all of them, and only them)."""

    line: int
    regexes: dict[str, list[str]]
    only: set[str]


def expectations(path: Path) -> list[Expected]:
    """The marks of ``path``; each applies to the next line holding code."""
    comments: dict[int, str] = {}
    code_lines: set[int] = set()
    with path.open("rb") as source:
        for token in tokenize.tokenize(source.readline):
            if token.type == tokenize.COMMENT:
                comments[token.start[0]] = token.string
            elif token.type not in _NOT_CODE:
                code_lines.update(range(token.start[0], token.end[0] + 1))
    found: dict[int, Expected] = {}
    for number, comment in sorted(comments.items()):
        mark, only = _MARK.fullmatch(comment), _ONLY.match(comment)
        if mark is None and only is None:
            assert "assert-type-error" not in comment, f"{path.name}:{number}: malformed mark"
            continue
        assert number not in code_lines, f"{path.name}:{number}: a mark needs a line of its own"
        target = min((n for n in code_lines if n > number), default=None)
        assert target is not None, f"{path.name}:{number}: the mark applies to no line"
        case = found.setdefault(target, Expected(target, {}, set()))
        if mark is not None:
            assert mark["checker"] in CHECKERS, f"{path.name}:{number}: unknown checker"
            re.compile(mark["regex"])
            case.regexes.setdefault(mark["checker"], []).append(mark["regex"])
        elif only is not None:
            case.only.add(only["checker"])
    return [found[line] for line in sorted(found)]


def _pyright(files: list[Path], workdir: Path) -> list[Diagnostic]:
    """Run pyright (from node_modules) on ``files``, strict by their ``# pyright: strict``."""
    # A config of our own: the project's excludes misuse.py, and pyright skips excluded files
    # even when they are named on the command line.
    config = workdir / "pyrightconfig.json"
    config.write_text(json.dumps({"pythonVersion": "3.11"}))
    index = node_modules() / "pyright" / "index.js"
    if not index.exists():
        raise FileNotFoundError(f"{index} missing (run `make setup`)")
    argv = [str(node_binary()), str(index), "--outputjson", "-p", str(config)]
    argv += ["--pythonpath", sys.executable, *map(str, files)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=240, cwd=workdir)
    assert proc.returncode in (0, 1), f"pyright failed:\n{proc.stdout}\n{proc.stderr}"
    report = json.loads(proc.stdout)
    assert report["summary"]["filesAnalyzed"] == len(files), report["summary"]
    return [
        Diagnostic(Path(d["file"]).name, d["range"]["start"]["line"] + 1, d["message"])
        for d in report["generalDiagnostics"]
    ]


def _mypy(files: list[Path], workdir: Path) -> list[Diagnostic]:
    """Run mypy with the project's configuration (strict) on ``files``."""
    argv = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")]
    argv += ["--cache-dir", str(workdir / "mypy-cache"), "--output", "json", *map(str, files)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert proc.returncode in (0, 1), f"mypy failed:\n{proc.stdout}\n{proc.stderr}"
    diagnostics = []
    for line in proc.stdout.splitlines():
        d = json.loads(line)
        diagnostics.append(Diagnostic(Path(d["file"]).name, d["line"], d["message"]))
    return diagnostics


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Diagnostic]]:
    """Each checker's diagnostics of both files (one run each)."""
    files = [MISUSE, CORRECT]
    return {
        "pyright": _pyright(files, tmp_path_factory.mktemp("pyright")),
        "mypy": _mypy(files, tmp_path_factory.mktemp("mypy")),
    }


def test_the_misuse_file_marks_enough_cases() -> None:
    cases = expectations(MISUSE)
    assert len(cases) >= 25
    for case in cases:
        for checker in CHECKERS:
            others = [c for c in CHECKERS if c != checker]
            assert checker in case.regexes or case.only & set(others), (
                f"misuse.py:{case.line}: no {checker} mark; if {checker} cannot see this misuse, "
                f"say why in a '# only-{others[0]}: ...' comment"
            )
        for checker in case.only:
            assert set(case.regexes) <= {checker}, f"misuse.py:{case.line}: only-{checker}?"


def _mismatches(checker: str, diagnostics: list[Diagnostic]) -> Iterator[str]:
    cases = {case.line: case.regexes.get(checker, []) for case in expectations(MISUSE)}
    by_line: dict[int, list[Diagnostic]] = {}
    for d in diagnostics:
        if d.file == MISUSE.name:
            by_line.setdefault(d.line, []).append(d)
    for line, regexes in sorted(cases.items()):
        seen = by_line.get(line, [])
        for regex in regexes:
            if not any(re.search(regex, d.message) for d in seen):
                shown = "".join(f"\n    {d.message}" for d in seen) or " nothing"
                yield f"misuse.py:{line}: no error matching {regex!r}; {checker} said:{shown}"
    for line, seen in sorted(by_line.items()):
        for d in seen:
            if not any(re.search(regex, d.message) for regex in cases.get(line, [])):
                yield f"unexpected {checker} error at {d}"


@pytest.mark.parametrize("checker", CHECKERS)
def test_each_misuse_is_refused(checker: str, reports: dict[str, list[Diagnostic]]) -> None:
    problems = list(_mismatches(checker, reports[checker]))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("checker", CHECKERS)
def test_idiomatic_code_is_accepted(checker: str, reports: dict[str, list[Diagnostic]]) -> None:
    errors = [str(d) for d in reports[checker] if d.file == CORRECT.name]
    assert not errors, "\n".join(errors)


# -- what the types cannot stop is refused at run time --------------------------------------------


def test_the_idiomatic_definitions_are_valid() -> None:
    spec = importlib.util.spec_from_file_location("undying_typecheck_correct", CORRECT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through it
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    assert isinstance(module.app, undying.Endpoint)
    assert list(module.counter.handlers) == ["add", "get", "reset", "describe"]
    assert module.get.kind == "shared" and module.signup.main_handler is module.run


def test_shared_contexts_have_no_state_writers() -> None:
    for name in ("set", "clear", "clear_all"):
        assert not hasattr(ObjectSharedContext, name)
        assert not hasattr(WorkflowSharedContext, name)
        assert callable(getattr(ObjectContext, name))
        assert callable(getattr(WorkflowContext, name))


async def _as_completed(*futures: Any) -> list[undying.DurableFuture[Any]]:
    return [future async for future in undying.as_completed(*futures)]


_COMBINATORS: dict[str, Callable[[Any], Coroutine[Any, Any, object]]] = {
    "gather": undying.gather,
    "select": undying.select,
    "wait_completed": undying.wait_completed,
    "as_completed": _as_completed,
}


@pytest.mark.parametrize("combinator", list(_COMBINATORS))
@pytest.mark.parametrize("kind", ["asyncio.Future", "coroutine", "None"])
def test_combinators_refuse_non_durable_futures(combinator: str, kind: str) -> None:
    async def attempt() -> None:
        arg: Any = None
        if kind == "asyncio.Future":
            arg = asyncio.get_running_loop().create_future()
        elif kind == "coroutine":
            arg = asyncio.sleep(0)
        try:
            with pytest.raises(TypeError, match="is not a durable future"):
                await _COMBINATORS[combinator](arg)
        finally:
            if kind == "coroutine":
                arg.close()

    asyncio.run(attempt())
