"""The partition log: a virtual log (chain of segments), each segment served by a loglet.

Everything the server knows changes only through records appended here. Single node uses the
local loglet on the embedded database; cluster mode swaps in a replicated loglet.
"""

from undying.server.log.bifrost import Bifrost as Bifrost
from undying.server.log.loglet import Loglet as Loglet
from undying.server.log.loglet import LogRecord as LogRecord
from undying.server.log.loglet import MemoryLoglet as MemoryLoglet
from undying.server.log.loglet import SealedError as SealedError
from undying.server.log.loglet import TailState as TailState

__all__ = ["Bifrost", "LogRecord", "Loglet", "MemoryLoglet", "SealedError", "TailState"]
