"""What the duties need of a running gateway (网关服务接口), declared once as a `Protocol`.

Routing, the platform's answers, reconciliation lists, the population reports and the
scheduled jobs work with a gateway's settings, its database engine, its signing key and
the transport that reaches a department. They type that as `GatewayServices`, not as the
`Gateway` class of `gateway.exchange.lifecycle`, so none of them imports the exchange
lifecycle (which itself routes every exchange: the import would be a cycle). `Gateway`
satisfies it structurally (PEP 544); tests may hand in anything that has these four.

Sits in the layers just above `gateway.intake` (it names `Transport` and `Signer`), below
`gateway.routing` (docs/architecture.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from gateway.intake.transports.base import Mailboxes

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy import Engine

    from gateway.adapter import Adapter
    from gateway.intake.staging import Sniffed
    from gateway.receipts.signing import Signer


class GatewayServices(Mailboxes, Protocol):
    """A gateway's settings, database, signing key and transports (网关服务).

    From `Mailboxes` (gateway/intake/transports/base.py): `settings`, and
    `transport_for(department)`, the mailbox of that department (its SFTP server when
    `[sftp.NAME]` serves it, else the local mailbox)."""

    engine: Engine
    signer: Signer


class ProcessedPage(Protocol):
    """What became of bytes processed as one exchange: its id and its signed receipt's
    file name (`gateway.exchange.lifecycle.Outcome` has both)."""

    @property
    def exchange_id(self) -> int: ...

    @property
    def receipt(self) -> str | None: ...


class ExchangeServices(GatewayServices, Protocol):
    """`GatewayServices` and one more thing: process bytes the gateway fetched or sent as
    one exchange of a department (交换入账), with the same duplicate check, transaction and
    signed receipt as a dropped file. The platform receipts what it sends (XCXX, TBXX,
    FKXX) through it, without importing the exchange lifecycle's `Gateway` class."""

    def process_page(
        self,
        department: str,
        name: str,
        source_path: str,
        staged: Path,
        sniffed: Sniffed,
        *,
        adapter: Adapter | str | None = None,
        keep_copy: bool = True,
    ) -> ProcessedPage: ...
