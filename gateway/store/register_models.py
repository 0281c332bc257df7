"""Tables of the population register (人口基础信息库) and the register of women of
childbearing age derived from it (gateway/register/, docs/register.md).

`RegisterFact` holds what one stored record (or one row of the hand-imported 育龄妇女 table)
says about one person; `RegisterFolded` marks each record folded in, so a record is never
counted twice; `RegisterPerson` is the derived register, one row per ID number, rebuilt from
the facts alone (no clock, no row ids), so a rebuild gives the same rows."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class RegisterFolded(SQLModel, table=True):
    """A stored record (`kind` = `record`) or an imported 育龄妇女 row (`kind` = `wcba`)
    already folded into the register (已并入)."""

    __table_args__ = (UniqueConstraint("kind", "ref_id", name="uq_register_folded"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str
    ref_id: int


class RegisterFact(SQLModel, table=True):
    """One attribute of one person as one source states it at one event date (事实):
    `source` is the sending department (or `wcba`, the hand-imported table)."""

    __table_args__ = (
        Index("ix_registerfact_person", "id_number", "event_date"),
        Index("ix_registerfact_key", "contract", "business_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    id_number: str = Field(description="公民身份号码, 18 characters (a 15-digit number is upgraded)")
    attribute: str
    value: str = Field(sa_column=Column(Text, nullable=False))
    source: str
    contract: str
    business_key: str
    version: int = 1
    record_id: int | None = Field(default=None, foreign_key="record.id")
    lookup_id: int | None = Field(default=None, foreign_key="lookupentry.id")
    exchange_id: int | None = Field(default=None, foreign_key="exchange.id")
    event_date: dt.date


class RegisterPerson(SQLModel, table=True):
    """One person of the register (人口基础信息), each attribute from its authoritative
    source; `state` is the canonical JSON of every attribute with its source, the other
    sources' values beside it, the disagreements and the history."""

    __table_args__ = (
        Index("ix_registerperson_place", "township_code", "village_code"),
        Index("ix_registerperson_women", "sex", "birth_date"),
    )

    id_number: str = Field(primary_key=True)
    name: str | None = None
    sex: str | None = None
    birth_date: dt.date | None = None
    marital_status: str | None = Field(default=None, description="GB/T 2261.2 code")
    children: int = 0
    household_address: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    household_division: str | None = None
    residence_address: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    residence_division: str | None = None
    in_county: bool = False
    township_code: str | None = None
    village_code: str | None = None
    place_status: str = Field(default="none", description="village | township | unmatched | elsewhere | none")
    dead_on: dt.date | None = None
    moved: str | None = Field(default=None, description="in | out: the last move of the household registration")
    moved_on: dt.date | None = None
    last_change_on: dt.date | None = None
    last_change_kind: str | None = None
    last_change_source: str | None = None
    disagreements: int = 0
    state: str = Field(default="{}", sa_column=Column(Text, nullable=False))


class RegisterListDelivery(SQLModel, table=True):
    """A name list of the regulations (新婚夫妇、婴儿落户、死亡人员、育龄妇女迁出迁入名单) for one township
    and period, encrypted to the township's key and signed, in its outbox (`town-<code>/outbox`).

    status: `held` (no usable key, or the outbox could not be written: `reason`), `delivered`."""

    __table_args__ = (UniqueConstraint("recipient", "kind", "period", name="uq_register_list"),)

    id: int | None = Field(default=None, primary_key=True)
    recipient: str
    kind: str
    period: str
    rows: int = 0
    status: str = "held"
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    file_name: str | None = None
    sha256: str | None = None
    encrypted_to: str | None = None
    delivered_at: dt.datetime | None = None


class RegisterResolution(SQLModel, table=True):
    """A clerk's resolution of a disagreement of the register (核实): these two values of this
    attribute were looked at, with the reason. It holds while the sources say the same; a new
    value opens the disagreement again. Kept across rebuilds (it is not derived)."""

    __table_args__ = (Index("ix_registerresolution_person", "id_number", "attribute"),)

    id: int | None = Field(default=None, primary_key=True)
    id_number: str
    attribute: str
    value_sha256: str = Field(description="sha256 of the canonical JSON of the disagreement it resolves")
    reason: str = Field(sa_column=Column(Text, nullable=False))
    resolved_by: str
    resolved_at: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.UTC).replace(microsecond=0))
