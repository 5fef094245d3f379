"""External processes for tests and benchmarks: start, watch stdout, stop, kill -9.

Every :class:`ManagedProcess` runs in its own session (process group), so signals reach the
whole tree (wrappers and their children), and is tracked in a module-wide registry:
:func:`kill_all` (also registered with :mod:`atexit`) kills whatever is still running.

Stdout is read by a thread that appends each line to the process's log file and wakes up
:meth:`ManagedProcess.wait_for_line`, so readiness is an event, not a sleep loop. Stderr goes
straight to a second log file.
"""

from __future__ import annotations

import atexit
import collections
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Final

from undying.testing.waiting import Deadline, WaitTimeout

__all__ = ["ManagedProcess", "ProcessExited", "kill_all", "live_processes"]

_ANSI: Final = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TAIL_LINES: Final = 40
#: Stdout lines kept in memory per process (all of them go to the log file).
MAX_KEPT_LINES: Final = 20_000


class ProcessExited(RuntimeError):
    """The process ended while something was waiting for it to become ready."""


class ManagedProcess:
    """One run of an external program.

    Args:
        argv: program and arguments.
        name: short label; also names the log files ``<log_dir>/<name>.stdout.log`` and
            ``.stderr.log``
            (appended to, so restarts under the same name share them).
        log_dir: where log files go (created if missing).
        env: full environment of the child (default: a copy of ours).
        cwd: working directory.
        stop_signal: signal for a graceful :meth:`stop` (SIGTERM, or SIGINT for programs that
            install their own SIGTERM handler).
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.argv = list(argv)
        self.name = name
        self.log_dir = log_dir
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.stop_signal = stop_signal
        self.stdout_log = log_dir / f"{name}.stdout.log"
        self.stderr_log = log_dir / f"{name}.stderr.log"
        self._lines: collections.deque[str] = collections.deque(maxlen=MAX_KEPT_LINES)
        self._seen = 0  # lines read so far, including those dropped from ``_lines``
        self._eof = False
        self._cond = threading.Condition()
        self._popen: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._stdout_file: IO[str] | None = None
        self._stderr_file: IO[bytes] | None = None
        self._released = False
        self.started_at = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ManagedProcess:
        """Launch the program; returns ``self``."""
        if self._popen is not None:
            raise RuntimeError(f"{self.name} was already started")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%H:%M:%S")
        self._stdout_file = open(self.stdout_log, "a", encoding="utf-8")  # noqa: SIM115
        self._stderr_file = open(self.stderr_log, "ab")  # noqa: SIM115
        header = f"=== {stamp} start: {' '.join(self.argv)}\n"
        self._stdout_file.write(header)
        self._stdout_file.flush()
        self._stderr_file.write(header.encode())
        self._stderr_file.flush()
        self.started_at = time.monotonic()
        self._popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )
        _REGISTRY.add(self)
        self._reader = threading.Thread(
            target=self._read_stdout, name=f"stdout-{self.name}", daemon=True
        )
        self._reader.start()
        return self

    def _read_stdout(self) -> None:
        popen = self._popen
        if popen is None or popen.stdout is None:
            return
        out = self._stdout_file
        for raw in popen.stdout:
            line = _ANSI.sub("", raw.decode("utf-8", "replace")).rstrip("\r\n")
            with self._cond:
                self._lines.append(line)
                self._seen += 1
                if out is not None and not out.closed:
                    out.write(line + "\n")
                    out.flush()
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._popen.pid

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def send_signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the process group (no-op once the process has exited)."""
        if self._popen is None or self._popen.poll() is not None:
            return
        try:
            os.killpg(self._popen.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float) -> int:
        """Wait for exit; returns the exit code. Raises ``subprocess.TimeoutExpired``."""
        if self._popen is None:
            raise RuntimeError(f"{self.name} is not started")
        code = self._popen.wait(timeout)
        self._release()
        return code

    def stop(self, timeout: float = 15.0) -> int:
        """Graceful stop: ``stop_signal``, wait up to ``timeout``, then SIGKILL.

        Returns the exit code (negative signal number if killed).
        """
        if self._popen is None:
            raise RuntimeError(f"{self.name} is not started")
        self.send_signal(self.stop_signal)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int:
        """``kill -9`` of the whole process group; returns the exit code."""
        if self._popen is None:
            raise RuntimeError(f"{self.name} is not started")
        self.send_signal(signal.SIGKILL)
        return self.wait(30.0)

    def _release(self) -> None:
        """After exit: kill stragglers of the group, join the reader, close files."""
        popen = self._popen
        if popen is None or self._released:
            return
        self._released = True
        try:
            os.killpg(popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self._reader is not None:
            self._reader.join(5.0)
        if popen.stdout is not None and (self._reader is None or not self._reader.is_alive()):
            popen.stdout.close()
        with self._cond:
            for f in (self._stdout_file, self._stderr_file):
                if f is not None and not f.closed:
                    f.close()
        _REGISTRY.discard(self)

    # -- output ------------------------------------------------------------------------------

    @property
    def lines(self) -> list[str]:
        """Stdout lines so far (the last ``MAX_KEPT_LINES``; ANSI colour codes removed)."""
        with self._cond:
            return list(self._lines)

    def mark(self) -> int:
        """Number of the next stdout line; pass it as ``since`` to only look at later lines."""
        with self._cond:
            return self._seen

    def wait_for_line(
        self,
        pattern: str | re.Pattern[str],
        *,
        timeout: float,
        since: int = 0,
    ) -> re.Match[str]:
        """Block until a stdout line (from index ``since``) matches ``pattern`` (``re.search``).

        Raises:
            ProcessExited: stdout closed (the process ended) without a match.
            WaitTimeout: no match within ``timeout`` seconds.
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = Deadline(timeout)
        pos = since
        with self._cond:
            while True:
                first_kept = self._seen - len(self._lines)
                pos = max(pos, first_kept)
                while pos < self._seen:
                    found = regex.search(self._lines[pos - first_kept])
                    pos += 1
                    if found is not None:
                        return found
                if self._eof:
                    raise ProcessExited(
                        f"{self.name} exited (code {self.returncode}) before printing a line "
                        f"matching {regex.pattern!r}\n{self.tail()}"
                    )
                left = deadline.remaining()
                if left <= 0:
                    raise WaitTimeout(
                        f"{self.name}: no stdout line matching {regex.pattern!r} within "
                        f"{timeout:.1f}s\n{self.tail()}"
                    )
                self._cond.wait(left)

    def tail(self, lines: int = _TAIL_LINES) -> str:
        """The last lines of stdout and stderr, for error messages."""
        with self._cond:
            recent = list(self._lines)[-lines:]
        parts = [f"--- {self.name} stdout ({self.stdout_log}):", *recent]
        try:
            err = self.stderr_log.read_bytes().decode("utf-8", "replace").splitlines()
        except OSError:
            err = []
        parts += [f"--- {self.name} stderr ({self.stderr_log}):", *err[-lines:]]
        return "\n".join(_ANSI.sub("", p) for p in parts)

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited={self.returncode}"
        pid = self._popen.pid if self._popen is not None else None
        return f"<ManagedProcess {self.name} pid={pid} {state}>"


class _Registry:
    """Every started, not yet reaped process (a safety net against leftovers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: dict[int, ManagedProcess] = {}

    def add(self, proc: ManagedProcess) -> None:
        with self._lock:
            self._procs[id(proc)] = proc

    def discard(self, proc: ManagedProcess) -> None:
        with self._lock:
            self._procs.pop(id(proc), None)

    def snapshot(self) -> list[ManagedProcess]:
        with self._lock:
            return list(self._procs.values())


_REGISTRY: Final = _Registry()


def live_processes() -> list[ManagedProcess]:
    """Processes started through this module and not yet reaped."""
    return _REGISTRY.snapshot()


def kill_all(*, on_kill: Callable[[ManagedProcess], None] | None = None) -> int:
    """SIGKILL every process still registered; returns how many were still running."""
    count = 0
    for proc in _REGISTRY.snapshot():
        if proc.running:
            count += 1
            if on_kill is not None:
                on_kill(proc)
        try:
            proc.kill()
        except Exception:  # best effort at shutdown
            _REGISTRY.discard(proc)
    return count


atexit.register(kill_all)
