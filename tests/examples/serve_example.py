"""Serve the ``app`` of one example file (``python serve_example.py examples/saga.py``).

What ``undying dev`` does for the app, on a free port with the harness's ready line (see
:mod:`undying.testing.services`), so that tests can register it with any server.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from undying.testing.asgi import serve_asgi

if __name__ == "__main__":
    example = Path(sys.argv[1]).resolve()
    sys.path.insert(0, str(example.parent))  # as undying dev does: siblings are importable
    serve_asgi(runpy.run_path(str(example), run_name="example")["app"])
