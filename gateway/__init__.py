"""Interagency data-exchange gateway.

Plugin authors need only `gateway.hookimpl` and `gateway.Adapter`::

    from gateway import Adapter, hookimpl

    @hookimpl
    def register_adapters(register):
        register(WaterBoardAdapter)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from gateway.hookspecs import hookimpl

try:
    __version__ = version("interagency-gateway")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"


def __getattr__(name: str) -> object:  # lazy: importing gateway must not import every adapter
    if name in {"Adapter", "RawRow", "SourceFile"}:
        from gateway import adapter

        return getattr(adapter, name)
    raise AttributeError(name)


__all__ = ["Adapter", "RawRow", "SourceFile", "__version__", "hookimpl"]
