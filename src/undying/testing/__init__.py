"""Test support.

For testing your services: :class:`TestEnvironment` (:mod:`~undying.testing.harness`) runs them
against an in-process undying server on virtual time, and inspects journals and state.

For undying's own tests and benchmarks: run undying or the reference restate-server, SDK
services and the official CLI as real processes, and talk to them.

Modules:

- :mod:`~undying.testing.harness`: :class:`TestEnvironment`, the in-process harness.
- :mod:`~undying.testing.servers`: :class:`UndyingServer`, :class:`RestateServer`, one interface.
- :mod:`~undying.testing.services`: service deployments as processes (Python, Node).
- :mod:`~undying.testing.asgi`: serve an ASGI app on hypercorn and announce the port.
- :mod:`~undying.testing.cli`: the official ``restate`` CLI.
- :mod:`~undying.testing.clients`: ingress and admin API clients.
- :mod:`~undying.testing.effects`: the services' side-effect log.
- :mod:`~undying.testing.processes`: process lifecycle and the leftover-killing registry.
- :mod:`~undying.testing.waiting`: deadlines and the single polling helper.
"""

from undying.testing.cli import CliResult as CliResult
from undying.testing.cli import RestateCli as RestateCli
from undying.testing.clients import AdminClient as AdminClient
from undying.testing.clients import IngressClient as IngressClient
from undying.testing.clients import InvocationFailure as InvocationFailure
from undying.testing.clients import UnexpectedResponse as UnexpectedResponse
from undying.testing.effects import Effect as Effect
from undying.testing.effects import EffectsLog as EffectsLog
from undying.testing.harness import InvocationHandle as InvocationHandle
from undying.testing.harness import InvocationPaused as InvocationPaused
from undying.testing.harness import JournalEntry as JournalEntry
from undying.testing.harness import RequestRejected as RequestRejected
from undying.testing.harness import TestEnvironment as TestEnvironment
from undying.testing.httpclient import HttpResponse as HttpResponse
from undying.testing.processes import ManagedProcess as ManagedProcess
from undying.testing.processes import ProcessExited as ProcessExited
from undying.testing.processes import kill_all as kill_all
from undying.testing.servers import TARGETS as TARGETS
from undying.testing.servers import RestateServer as RestateServer
from undying.testing.servers import Server as Server
from undying.testing.servers import Target as Target
from undying.testing.servers import UndyingServer as UndyingServer
from undying.testing.servers import create_server as create_server
from undying.testing.services import ServiceProcess as ServiceProcess
from undying.testing.services import node_service as node_service
from undying.testing.services import python_service as python_service
from undying.testing.waiting import Deadline as Deadline
from undying.testing.waiting import WaitTimeout as WaitTimeout
from undying.testing.waiting import poll_until as poll_until

__all__ = [
    "TARGETS",
    "AdminClient",
    "CliResult",
    "Deadline",
    "Effect",
    "EffectsLog",
    "HttpResponse",
    "IngressClient",
    "InvocationFailure",
    "InvocationHandle",
    "InvocationPaused",
    "JournalEntry",
    "ManagedProcess",
    "ProcessExited",
    "RestateCli",
    "RequestRejected",
    "RestateServer",
    "Server",
    "ServiceProcess",
    "Target",
    "TestEnvironment",
    "UndyingServer",
    "UnexpectedResponse",
    "WaitTimeout",
    "create_server",
    "kill_all",
    "node_service",
    "poll_until",
    "python_service",
]
