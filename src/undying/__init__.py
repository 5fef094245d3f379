"""undying: durable execution for Python, wire-compatible with Restate.

The SDK lives here: define services, virtual objects and workflows, serve them with
:func:`app` (an ASGI app), and every step they take is journaled by the server::

    import undying

    greeter = undying.Service("Greeter")

    @greeter.handler()
    async def greet(ctx: undying.Context, name: str) -> str:
        await ctx.run("notify", send_notification, name)
        await ctx.sleep(timedelta(seconds=1))
        return f"You said hi to {name}!"

    app = undying.app([greeter])
"""

from undying._version import __version__ as __version__
from undying.errors import InvocationCancelled, SerdeError, TerminalError, UndyingError
from undying.sdk.context import (
    Context,
    DurablePromise,
    ObjectContext,
    ObjectSharedContext,
    Request,
    WorkflowContext,
    WorkflowSharedContext,
)
from undying.sdk.definitions import Handler, RetryPolicy, Service, VirtualObject, Workflow
from undying.sdk.endpoint import Endpoint, app
from undying.sdk.futures import (
    CallFuture,
    DurableFuture,
    SendHandle,
    as_completed,
    gather,
    select,
    wait_completed,
)
from undying.sdk.invocation import RunOptions
from undying.sdk.serde import (
    BytesSerde,
    DataclassSerde,
    JsonSerde,
    MsgspecSerde,
    NoneSerde,
    PydanticSerde,
    Serde,
    TypedDictSerde,
)

__all__ = [
    "BytesSerde",
    "CallFuture",
    "Context",
    "DataclassSerde",
    "DurableFuture",
    "DurablePromise",
    "Endpoint",
    "Handler",
    "InvocationCancelled",
    "JsonSerde",
    "MsgspecSerde",
    "NoneSerde",
    "ObjectContext",
    "ObjectSharedContext",
    "PydanticSerde",
    "Request",
    "RetryPolicy",
    "RunOptions",
    "Serde",
    "SendHandle",
    "SerdeError",
    "Service",
    "TerminalError",
    "TypedDictSerde",
    "UndyingError",
    "VirtualObject",
    "Workflow",
    "WorkflowContext",
    "WorkflowSharedContext",
    "__version__",
    "app",
    "as_completed",
    "gather",
    "select",
    "wait_completed",
]
