"""Shared contracts: the records departments exchange, as pydantic models.

Each contract has a JSON Schema in `contracts/schemas/`, regenerated with
`gateway contracts export` (a test fails when the committed files are stale).
"""

from __future__ import annotations

from .base import SCHEMA_VERSION, Contract, ContractModel
from .births import BirthEvent, Newborn
from .canonical import canonical_json
from .envelope import Envelope
from .fields import Sex
from .identity import CreditCode, IdNumber
from .person import Person

CONTRACTS: dict[str, type[Contract]] = {model.contract_name: model for model in (BirthEvent,)}

__all__ = [
    "CONTRACTS",
    "SCHEMA_VERSION",
    "BirthEvent",
    "Contract",
    "ContractModel",
    "CreditCode",
    "Envelope",
    "IdNumber",
    "Newborn",
    "Person",
    "Sex",
    "canonical_json",
]
