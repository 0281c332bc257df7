"""The envelope around every exchanged record (交换信封): where it came from and how it
is identified, separate from the record's own content (which alone is hashed)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import SCHEMA_VERSION


class Envelope(BaseModel):
    """One record as the gateway stores and delivers it."""

    model_config = ConfigDict(extra="forbid")

    contract: str = Field(description="contract name, e.g. BirthEvent")
    schema_version: str = SCHEMA_VERSION
    department: str = Field(description="sending department's short name, e.g. hospital")
    exchange_id: int
    row_number: int = Field(description="row (or element) of the source file, header = row 1")
    business_key: str
    version: int = Field(ge=1, description="1 for the first version of a business key; corrections count up")
    record_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the record's canonical JSON")
    received_at: dt.datetime
    record: dict[str, Any]
