"""Shared contracts: the records departments exchange, as pydantic models.

Each contract has a JSON Schema in `contracts/schemas/`, regenerated with
`gateway contracts export` (a test fails when the committed files are stale).
"""

from __future__ import annotations

from .base import SCHEMA_VERSION, Contract, ContractModel
from .births import BirthEvent, Newborn
from .canonical import canonical_json
from .civil import AdoptionEvent, CremationEvent, MarriageEvent, MarriageParty
from .codes import Ethnicity, MaritalStatus, PoliceBusiness, Relation
from .deaths import DeathEvent
from .envelope import Envelope
from .fields import Sex
from .housing import HousingOccupancy, Occupant
from .household import Household, Place, Resident
from .identity import CreditCode, IdNumber
from .migration import Migration, ResidencePermit
from .person import Person
from .platform import AssistCheckFeedback, AssistCheckRequest, PlatformNotice
from .school import SchoolEnrolment

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
