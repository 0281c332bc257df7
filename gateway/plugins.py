"""The plugin manager: built-in adapters first, then the `gateway` entry-point group.

`GATEWAY_LOAD_PLUGINS` (a comma-separated allowlist of entry-point names) and
`GATEWAY_DISABLED_PLUGINS` (a denylist) control which third-party plugins load.
Entry points load once, on first use.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import os
from importlib.metadata import entry_points
from typing import Any

import pluggy

from gateway import hookspecs
from gateway.adapter import Adapter, AdapterInfo
from gateway.errors import PluginError, UnknownName

DEFAULT_PLUGINS = (
    "adapters.hospital_births",
    "adapters.police_hukou",
    "adapters.civil_affairs",
    "adapters.school_enrolments",
    "adapters.housing_registry",
    "adapters.national_platform",
    "gateway.reconcile.builtin",
    "gateway.register.reconciliation",  # the register's disagreements, a derived rule
    # The built-in scheduled jobs (`register_jobs`, trylast): pluggy calls trylast hooks in
    # the order registered, so `gateway jobs` lists inboxes and pulls, reconcile, reports.
    "gateway.platform.jobs",
    "gateway.reminders.job",
    "gateway.reconcile.job",
    "gateway.register.job",
    "gateway.population_reports.job",
)


@functools.lru_cache(maxsize=4)
def _distributions_on(path: tuple[str, ...]) -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    return packages_distributions()


def _packages_distributions() -> dict[str, list[str]]:
    # Scans every installed distribution (~0.2 s): once per sys.path, not once per adapter.
    return _distributions_on(tuple(sys.path))


def _distribution_of(obj: Any) -> tuple[str, str]:
    module = inspect.getmodule(obj)
    top = (module.__name__ if module else "").split(".")[0]
    from importlib.metadata import version

    dists = _packages_distributions().get(top, [])
    if dists:
        try:
            return dists[0], version(dists[0])
        except Exception:  # noqa: BLE001 - a broken install still lists the adapter
            return dists[0], "?"
    return top or "?", "?"


def _names(variable: str) -> set[str] | None:
    raw = os.environ.get(variable)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


class PluginManager:
    """Wraps pluggy's manager with typed calls and the adapter registry."""

    def __init__(self, *, load_entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        for module_name in DEFAULT_PLUGINS:
            self.pm.register(importlib.import_module(module_name), name=module_name)
        if load_entry_points:
            self._load_entry_points()
        self._adapters: dict[str, AdapterInfo] | None = None
        self._reconciliations: dict[str, Any] | None = None

    def _load_entry_points(self) -> None:
        allow, deny = _names("GATEWAY_LOAD_PLUGINS"), _names("GATEWAY_DISABLED_PLUGINS") or set()
        for ep in entry_points(group=hookspecs.PROJECT):
            if (allow is not None and ep.name not in allow) or ep.name in deny:
                continue
            if self.pm.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001
                raise PluginError(
                    f"Plugin {ep.name!r} ({ep.value}) failed to import: {exc}. "
                    f"Fix or uninstall it, or skip it with GATEWAY_DISABLED_PLUGINS={ep.name}"
                ) from exc
            self.pm.register(plugin, name=ep.name)

    def register(self, plugin: object, name: str | None = None) -> None:
        self.pm.register(plugin, name=name)
        self._adapters = None
        self._reconciliations = None

    def unregister(self, plugin: object) -> None:
        self.pm.unregister(plugin)
        self._adapters = None
        self._reconciliations = None

    # -- reconciliation rules -----------------------------------------------------------

    def reconciliations(self) -> dict[str, Any]:
        """Every registered reconciliation rule class by name (`register_reconciliations`)."""
        if self._reconciliations is None:
            from gateway.reconcile.base import check_rule_class

            found: dict[str, Any] = {}

            def register(rule_class: Any) -> None:
                check_rule_class(rule_class)
                existing = found.get(rule_class.name)
                if existing is not None:
                    raise PluginError(
                        f"Reconciliation rule name {rule_class.name!r} is registered twice: by "
                        f"{existing.__module__}.{existing.__qualname__} (package {_distribution_of(existing)[0]}) and by "
                        f"{rule_class.__module__}.{rule_class.__qualname__} (package {_distribution_of(rule_class)[0]}). "
                        "Rename one, or disable a plugin with GATEWAY_DISABLED_PLUGINS."
                    )
                found[rule_class.name] = rule_class

            self.pm.hook.register_reconciliations(register=register)
            self._reconciliations = found
        return self._reconciliations

    # -- adapters -------------------------------------------------------------

    def adapters(self) -> dict[str, AdapterInfo]:
        if self._adapters is None:
            found: dict[str, AdapterInfo] = {}

            def register(adapter_class: type[Adapter]) -> None:
                _check_adapter_class(adapter_class)
                existing = found.get(adapter_class.name)
                if existing is not None:
                    raise PluginError(
                        f"Adapter name {adapter_class.name!r} is registered twice: by "
                        f"{existing.adapter_class.__module__}.{existing.adapter_class.__qualname__} "
                        f"(package {existing.package}) and by "
                        f"{adapter_class.__module__}.{adapter_class.__qualname__} "
                        f"(package {_distribution_of(adapter_class)[0]}). "
                        "Rename one, or disable a plugin with GATEWAY_DISABLED_PLUGINS."
                    )
                package, version = _distribution_of(adapter_class)
                found[adapter_class.name] = AdapterInfo(
                    name=adapter_class.name,
                    department=adapter_class.department,
                    contracts=[c.contract_name for c in adapter_class.contracts],
                    file_types=list(adapter_class.file_types),
                    package=package,
                    version=version,
                    adapter_class=adapter_class,
                )

            self.pm.hook.register_adapters(register=register)
            self._adapters = found
        return self._adapters

    def adapter(self, name: str) -> AdapterInfo:
        adapters = self.adapters()
        if name not in adapters:
            raise UnknownName("adapter", name, list(adapters))
        return adapters[name]

    def adapters_for(self, department: str) -> list[AdapterInfo]:
        return [info for info in self.adapters().values() if info.department == department]


def _check_adapter_class(adapter_class: Any) -> None:
    if not (inspect.isclass(adapter_class) and issubclass(adapter_class, Adapter)):
        raise PluginError(f"register() takes an Adapter subclass, got {adapter_class!r}")
    for attribute in ("name", "department", "contracts"):
        if not getattr(adapter_class, attribute, None):
            raise PluginError(
                f"Adapter {adapter_class.__module__}.{adapter_class.__qualname__} has no {attribute!r}; "
                "set it as a class attribute"
            )
    if inspect.isabstract(adapter_class):
        raise PluginError(
            f"Adapter {adapter_class.name!r} does not implement "
            f"{', '.join(sorted(adapter_class.__abstractmethods__))}"
        )


_manager: PluginManager | None = None


def get_manager() -> PluginManager:
    """The process-wide manager, created (and entry points loaded) on first use."""
    global _manager
    if _manager is None:
        _manager = PluginManager()
    return _manager
