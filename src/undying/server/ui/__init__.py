"""The web UI of the admin port (``/ui``): server-rendered pages kept live with htmx."""

from __future__ import annotations

from undying.server.ui.app import UiApp

__all__ = ["UiApp"]
