"""undying: durable execution for Python, wire-compatible with Restate."""

from undying._version import __version__ as __version__

__all__ = ["__version__"]
