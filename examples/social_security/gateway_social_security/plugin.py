"""The plugin's hooks: what it brings to the gateway (docs/plugins.md names each hook)."""

from __future__ import annotations

from collections.abc import Callable

from gateway import hookimpl

from gateway_social_security.adapter import SocialSecurityDeathsAdapter
from gateway_social_security.contract import PensionDeathReport
from gateway_social_security.reasons import REASONS
from gateway_social_security.rules import PensionDeathsUnregistered


@hookimpl
def register_contracts(register: Callable[[type], None]) -> None:
    register(PensionDeathReport)


@hookimpl
def register_reasons(register: Callable[[str, str, str], None]) -> None:
    for code, (zh, en) in REASONS.items():
        register(code, zh, en)


@hookimpl
def register_adapters(register: Callable[[type], None]) -> None:
    register(SocialSecurityDeathsAdapter)


@hookimpl
def register_reconciliations(register: Callable[[type], None]) -> None:
    register(PensionDeathsUnregistered)
