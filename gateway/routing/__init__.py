"""Routing under the sharing agreements (docs/routing.md): each department receives what
it may, minimized, encrypted to its key, signed by the gateway, and acknowledged.

- `agreements`: the sharing agreements, checked against the contracts;
- `divisions`: HOME/divisions.csv and the placing of an address in a village (the
  township scope here; the register imports it from here);
- `minimize`: the fields of a contract, their Chinese headers, and the projection;
- `delivery`: `Router`, which routes accepted exchanges and writes the deliveries;
- `apply`: an agreement applied to exchanges received before it (协议补发), through the Router, once;
- `acks`: acknowledgements dropped back by the recipients.
"""

from gateway.routing.acks import is_acknowledgement, without_acknowledgements
from gateway.routing.agreements import Agreement, AgreementSet, load_agreements
from gateway.routing.delivery import DeliveryOutcome, PassReport, Router

__all__ = [
    "Agreement",
    "AgreementSet",
    "DeliveryOutcome",
    "PassReport",
    "Router",
    "is_acknowledgement",
    "load_agreements",
    "without_acknowledgements",
]
