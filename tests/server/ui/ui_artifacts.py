"""Where the browser tests save their screenshots, and how the run reports it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: The directory of this run's screenshots, once a browser test made it.
ARTIFACTS = pytest.StashKey[Path]()


def artifacts_dir(config: pytest.Config) -> Path:
    """``$UNDYING_UI_ARTIFACTS``, else ``test-artifacts/ui/`` of the checkout (gitignored)."""
    out = Path(os.environ.get("UNDYING_UI_ARTIFACTS") or config.rootpath / "test-artifacts" / "ui")
    out.mkdir(parents=True, exist_ok=True)
    config.stash[ARTIFACTS] = out
    return out
