"""Shared contracts: the records departments exchange, as pydantic models.

Each contract has a JSON Schema in `contracts/schemas/`, regenerated with
`gateway contracts export` (a test fails when the committed files are stale).
"""

from __future__ import annotations

from contracts.base import SCHEMA_VERSION, Contract, ContractModel
from contracts.births import BirthEvent, Newborn
from contracts.canonical import canonical_json
from contracts.civil import AdoptionEvent, CremationEvent, MarriageEvent, MarriageParty
from contracts.codes import Ethnicity, MaritalStatus, PoliceBusiness, Relation
from contracts.deaths import DeathEvent
from contracts.envelope import Envelope
from contracts.fields import Sex
from contracts.housing import HousingOccupancy, Occupant
from contracts.household import Household, Place, Resident
from contracts.identity import CreditCode, IdNumber
from contracts.migration import Migration, ResidencePermit
from contracts.person import Person
from contracts.platform import AssistCheckFeedback, AssistCheckRequest, PlatformNotice
from contracts.school import SchoolEnrolment

CONTRACTS: dict[str, type[Contract]] = {model.contract_name: model for model in (
    BirthEvent,
    DeathEvent,
    Migration,
    ResidencePermit,
    MarriageEvent,
    AdoptionEvent,
    CremationEvent,
    SchoolEnrolment,
    HousingOccupancy,
    AssistCheckRequest,
    AssistCheckFeedback,
    PlatformNotice,
)}

__all__ = [
    "CONTRACTS",
    "SCHEMA_VERSION",
    "AdoptionEvent",
    "AssistCheckFeedback",
    "AssistCheckRequest",
    "BirthEvent",
    "Contract",
    "ContractModel",
    "CremationEvent",
    "CreditCode",
    "DeathEvent",
    "Envelope",
    "Ethnicity",
    "Household",
    "HousingOccupancy",
    "IdNumber",
    "MaritalStatus",
    "MarriageEvent",
    "MarriageParty",
    "Migration",
    "Newborn",
    "Occupant",
    "Person",
    "Place",
    "PlatformNotice",
    "PoliceBusiness",
    "Relation",
    "ResidencePermit",
    "Resident",
    "SchoolEnrolment",
    "Sex",
    "canonical_json",
]
