"""The public surface of ``undying`` is exactly this list: changing it is a decision."""

from __future__ import annotations

import undying

PUBLIC = {
    "BytesSerde", "CallFuture", "Context", "DataclassSerde", "DurableFuture", "DurablePromise",
    "Endpoint", "Handler", "InvocationCancelled", "JsonSerde", "MsgspecSerde", "NoneSerde",
    "ObjectContext", "ObjectSharedContext", "PydanticSerde", "Request", "RetryPolicy",
    "RunOptions", "Serde", "SendHandle", "SerdeError", "Service", "TerminalError",
    "TypedDictSerde", "UndyingError", "VirtualObject", "Workflow", "WorkflowContext",
    "WorkflowSharedContext", "__version__", "app", "as_completed", "gather", "select",
    "wait_completed",
}  # fmt: skip


def test_all_is_the_public_surface() -> None:
    assert set(undying.__all__) == PUBLIC
    for name in undying.__all__:
        assert hasattr(undying, name), name


def test_importing_undying_does_not_import_the_server() -> None:
    import subprocess
    import sys

    code = "import sys, undying; print(any(m.startswith('undying.server') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
