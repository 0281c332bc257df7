"""The built-in contracts, field kinds and reason texts, registered through the same hooks
as a plugin's (`register_contracts`, `register_field_kinds`, `register_reasons`), marked
`trylast=True` so that an installed plugin is asked first.

The marker is pluggy's own (`HookimplMarker("gateway")`, the project name of
`gateway.hookspecs`), so that importing contracts/ never imports the gateway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

from contracts import CONTRACTS
from contracts.base import Contract
from contracts.reasons import REASONS

hookimpl = pluggy.HookimplMarker("gateway")


@hookimpl(trylast=True)
def register_contracts(register: Callable[[type[Contract]], None]) -> None:
    for model in CONTRACTS.values():
        register(model)


@hookimpl(trylast=True)
def register_field_kinds(register: Callable[[Any], None]) -> None:
    # The kinds' masking functions live in gateway.masking, the low layer every log line
    # uses; the hook runs only when the gateway's plugin manager calls it.
    from gateway.masking import BUILTIN_KINDS

    for kind in BUILTIN_KINDS:
        register(kind)


@hookimpl(trylast=True)
def register_reasons(register: Callable[[str, str, str], None]) -> None:
    for code, (zh, en) in REASONS.items():
        register(code, zh, en)
