"""The plugin manager: built-in adapters first, then the `gateway` entry-point group.

It holds the registries the hooks fill: adapters, contracts (`contracts()`, `contract(name)`),
field kinds (installed into gateway.masking, which masks with them), reason texts
(`reason_text(code)`), reconciliation rules.

`GATEWAY_LOAD_PLUGINS` (a comma-separated allowlist of entry-point names) and
`GATEWAY_DISABLED_PLUGINS` (a denylist) control which third-party plugins load.
Entry points load once, on first use.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import sys
import os
from importlib.metadata import entry_points
from typing import Any

import pluggy

from contracts.base import Contract, ContractModel, _model_type

from gateway import hookspecs, masking
from gateway.adapter import Adapter, AdapterInfo
from gateway.errors import PluginError, UnknownName
from gateway.masking import FieldKind

DEFAULT_PLUGINS = (
    "contracts.plugin",  # the 12 built-in contracts, the built-in field kinds and reason texts
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
    "gateway.mail.job",  # the office's mailbox, when gateway.toml has [mail] (issue 22)
    "gateway.reminders.job",
    "gateway.reconcile.job",
    "gateway.register.job",
    "gateway.population_reports.job",
    "gateway.retention.job",  # only while [retention] has rules
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
        self._forget()

    def _forget(self) -> None:
        """Drop every registry, to be filled again from the hooks when next asked for."""
        self._adapters: dict[str, AdapterInfo] | None = None
        self._reconciliations: dict[str, Any] | None = None
        self._contracts: dict[str, type[Contract]] | None = None
        self._field_kinds: dict[str, FieldKind] | None = None
        self._reasons: dict[str, tuple[str, str]] | None = None

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
        self._forget()

    def unregister(self, plugin: object) -> None:
        self.pm.unregister(plugin)
        self._forget()
        # The unregistered plugin's kinds go from gateway.masking too.
        masking.install_kinds((_manager or self).field_kinds())

    # -- field kinds, contracts and reason texts --------------------------------------

    def field_kinds(self) -> dict[str, FieldKind]:
        """Every registered field kind by name (`register_field_kinds`); also what
        gateway.masking masks with from now on."""
        if self._field_kinds is None:
            found: dict[str, FieldKind] = {}

            def register(kind: FieldKind) -> None:
                if not isinstance(kind, FieldKind):
                    raise PluginError(f"register() takes a gateway.masking.FieldKind, got {kind!r}")
                if not _SNAKE.match(kind.name) or not kind.label_zh or not kind.label_en or not callable(kind.mask):
                    raise PluginError(
                        f"Field kind {kind.name!r}: the name must be snake_case, label_zh and label_en not empty, "
                        "and mask a function of the value"
                    )
                if kind.name in found:
                    raise PluginError(
                        f"Field kind {kind.name!r} is registered twice. Rename one, or disable a plugin with "
                        "GATEWAY_DISABLED_PLUGINS."
                    )
                found[kind.name] = kind

            self.pm.hook.register_field_kinds(register=register)
            self._field_kinds = found
            masking.install_kinds(found)
        return self._field_kinds

    def reasons(self) -> dict[str, tuple[str, str]]:
        """Every registered reason text by code: (Chinese, English) (`register_reasons`)."""
        if self._reasons is None:
            found: dict[str, tuple[str, str]] = {}

            def register(code: str, zh: str, en: str) -> None:
                if not isinstance(code, str) or not _SNAKE.match(code):
                    raise PluginError(f"Reason code {code!r} must be snake_case (lowercase words joined by _)")
                if not (isinstance(zh, str) and zh.strip() and isinstance(en, str) and en.strip()):
                    raise PluginError(f"Reason code {code!r} needs a Chinese and an English text, neither empty")
                if code in found and found[code] != (zh, en):
                    raise PluginError(
                        f"Reason code {code!r} is registered twice with other texts ({found[code][0]} / {zh}). "
                        "Use a code of your own, or disable a plugin with GATEWAY_DISABLED_PLUGINS."
                    )
                found[code] = (zh, en)

            self.pm.hook.register_reasons(register=register)
            self._reasons = found
        return self._reasons

    def reason_text(self, code: str, fallback: str = "") -> tuple[str, str]:
        """The (Chinese, English) text of `code`; an unregistered one reads 数据无效 and the fallback."""
        found = self.reasons().get(code)
        return found if found is not None else ("数据无效", fallback or code)

    def contracts(self) -> dict[str, type[Contract]]:
        """Every registered contract class by `contract_name` (`register_contracts`)."""
        if self._contracts is None:
            kinds = self.field_kinds()
            found: dict[str, type[Contract]] = {}

            def register(contract_class: type[Contract]) -> None:
                _check_contract_class(contract_class, kinds)
                existing = found.get(contract_class.contract_name)
                if existing is not None and existing is not contract_class:
                    raise _registered_twice("Contract", contract_class.contract_name, existing, contract_class)
                found[contract_class.contract_name] = contract_class

            self.pm.hook.register_contracts(register=register)
            self._contracts = found
        return self._contracts

    def contract(self, name: str) -> type[Contract]:
        """The contract class of this name, or `UnknownName` listing the valid ones."""
        found = self.contracts()
        if name not in found:
            raise UnknownName("contract", name, sorted(found))
        return found[name]

    @staticmethod
    def package_of(obj: Any) -> str:
        """The installed distribution a class comes from (what `gateway contracts list` shows)."""
        return _distribution_of(obj)[0]

    # -- reconciliation rules -----------------------------------------------------------

    def reconciliations(self) -> dict[str, Any]:
        """Every registered reconciliation rule class by name (`register_reconciliations`)."""
        if self._reconciliations is None:
            from gateway.reconcile.base import check_rule_class

            found: dict[str, Any] = {}
            known = self.contracts()

            def register(rule_class: Any) -> None:
                check_rule_class(rule_class, known)
                existing = found.get(rule_class.name)
                if existing is not None:
                    raise _registered_twice("Reconciliation rule", rule_class.name, existing, rule_class)
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
                unknown = [code for code in adapter_class.reason_codes if code not in self.reasons()]
                if unknown:
                    raise PluginError(
                        f"Adapter {adapter_class.name!r} ({_where(adapter_class)}) raises reason code(s) "
                        f"{', '.join(unknown)} with no registered text: an unregistered code is refused at "
                        "registration. Register each with the register_reasons hook: register(code, 中文, English)"
                    )
                existing = found.get(adapter_class.name)
                if existing is not None:
                    raise _registered_twice("Adapter", adapter_class.name, existing.adapter_class, adapter_class)
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


_SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def _where(cls: Any) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _has_path(model: type[ContractModel], dotted: str) -> bool:
    current: type[ContractModel] | None = model
    for part in dotted.split("."):
        if current is None or part not in current.model_fields:
            return False
        sub = _model_type(current.model_fields[part].annotation)
        current = sub if sub is not None and issubclass(sub, ContractModel) else None
    return True


def _check_contract_class(contract_class: Any, kinds: dict[str, FieldKind]) -> None:
    """Refuse a contract the gateway cannot use, naming the class, its package and the fix."""
    if not (inspect.isclass(contract_class) and issubclass(contract_class, Contract)):
        raise PluginError(f"register() takes a contracts.Contract subclass, got {contract_class!r}")
    where = f"Contract {_where(contract_class)} (package {_distribution_of(contract_class)[0]})"
    name = getattr(contract_class, "contract_name", None)
    if not isinstance(name, str) or not name:
        raise PluginError(f"{where} has no contract_name; set it as a class attribute")
    keys = getattr(contract_class, "business_key_fields", None)
    if not keys or isinstance(keys, str):
        raise PluginError(f"{where} has no business_key_fields; set a tuple of dotted field names")
    for attribute, paths in (
        ("business_key_fields", tuple(keys)),
        ("event_date_field", (contract_class.event_date_field,) if contract_class.event_date_field else ()),
        ("division_field", (contract_class.division_field,) if contract_class.division_field else ()),
    ):
        for path in paths:
            if not _has_path(contract_class, path):
                raise PluginError(
                    f"{where}: {attribute} names {path!r}, which is not a field. "
                    f"Valid fields: {', '.join(contract_class.model_fields)}"
                )
    for path, kind in contract_class.field_kinds():
        if kind not in kinds:
            raise PluginError(
                f"{where}: field {'.'.join(path)} has kind {kind!r}, which is not a registered field kind. "
                f"Valid kinds: {', '.join(sorted(kinds))} (or register it with the register_field_kinds hook)"
            )


def _registered_twice(what: str, name: str, existing: type, new: type) -> PluginError:
    """One message for a name two plugins register (adapters, contracts, rules): both classes, their packages."""
    return PluginError(
        f"{what} name {name!r} is registered twice: by {_where(existing)} (package {_distribution_of(existing)[0]}) "
        f"and by {_where(new)} (package {_distribution_of(new)[0]}). "
        "Rename one, or disable a plugin with GATEWAY_DISABLED_PLUGINS."
    )


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


def contracts() -> dict[str, type[Contract]]:
    """Every registered contract by name: the built-ins and every plugin's."""
    return get_manager().contracts()


def contract(name: str) -> type[Contract]:
    """The registered contract of this name; `UnknownName("contract", ...)` lists the valid ones."""
    return get_manager().contract(name)


def reason_text(code: str, fallback: str = "") -> tuple[str, str]:
    """The registered (Chinese, English) text of an error code (`register_reasons`)."""
    return get_manager().reason_text(code, fallback)


# A kind gateway.masking does not know yet makes it ask the process-wide manager for the
# plugins' kinds (masking sits below this module and may not import it).
masking.set_kind_loader(lambda: get_manager().field_kinds())
