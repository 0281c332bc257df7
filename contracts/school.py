"""School enrolments (教育 · 学籍): a new pupil on a school's intake register (新生名册).

The age rule (入学年龄) is part of the contract, but its bounds are the operator's: the
contract holds the defaults (`StageAgeRanges`), and a producer passes other bounds
through pydantic's validation context::

    SchoolEnrolment.model_validate(data, context={"stage_ages": StageAgeRanges(primary=(6, 8))})

The school adapter passes its configured bounds this way. Without a context (a consumer
re-reading a stored record) the defaults apply.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from contracts.base import Contract
from contracts.codes import CodeEnum, code_parser
from contracts.fields import Address, PastDate, SexCode, Text
from contracts.person import Person
from contracts.rules import RuleErrors, age_on


class Stage(CodeEnum):
    """学段: the school stage the pupil enters."""

    KINDERGARTEN = ("kindergarten", "幼儿园")
    PRIMARY = ("primary", "小学")
    JUNIOR_MIDDLE = ("junior_middle", "初中")


class IdDocumentType(CodeEnum):
    """身份证件类型 as the student register (全国中小学生学籍信息管理系统) writes it."""

    RESIDENT_ID = ("resident_id", "居民身份证")
    HONG_KONG = ("hong_kong", "香港特区护照/身份证明")
    MACAO = ("macao", "澳门特区护照/身份证明")
    TAIWAN = ("taiwan", "台湾居民来往大陆通行证")
    FOREIGN_PERMANENT_RESIDENCE = ("foreign_permanent_residence", "境外永久居住证")
    PASSPORT = ("passport", "护照")
    HOUSEHOLD_REGISTER = ("household_register", "户口簿")
    OTHER = ("other", "其他")


STAGE_MESSAGE = "stage (学段) must be 幼儿园, 小学 or 初中"
ID_TYPE_MESSAGE = "ID document type must be one of " + ", ".join(member.label for member in IdDocumentType)

StageCode = Annotated[Stage, BeforeValidator(code_parser(Stage, "stage_code", STAGE_MESSAGE)), Field(description="学段")]
IdDocumentTypeCode = Annotated[
    IdDocumentType,
    BeforeValidator(code_parser(IdDocumentType, "id_type_code", ID_TYPE_MESSAGE, aliases={"身份证": "resident_id"})),
    Field(description="身份证件类型"),
]

_YEAR_MONTH = (
    re.compile(r"^(\d{4})(\d{2})$"),
    re.compile(r"^(\d{4})[-/.](\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月$"),
)


def parse_year_month(value: Any) -> Any:
    """入学年月: `202609`, `2026-09`, `2026/9` or `2026年9月`, kept as `2026-09`."""
    if isinstance(value, dt.date):
        return f"{value.year:04d}-{value.month:02d}"
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        for form in _YEAR_MONTH:
            match = form.match(text)
            if match and 1 <= int(match.group(2)) <= 12:
                return f"{match.group(1)}-{int(match.group(2)):02d}"
    raise PydanticCustomError("year_month", "year and month must be written as 202609")


YearMonth = Annotated[
    str,
    BeforeValidator(parse_year_month),
    Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="年月 (YYYY-MM)"),
]

AgeRange = tuple[Annotated[int, Field(ge=0, le=30)], Annotated[int, Field(ge=0, le=30)]]


class StageAgeRanges(BaseModel):
    """Allowed age per stage, in completed years (周岁) on the first day of the enrolment
    month, both ends included. Set in `gateway.toml` under
    `[adapters.school-enrolments.stage_ages]`, e.g. `primary = [6, 8]`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kindergarten: AgeRange = (2, 6)
    primary: AgeRange = (5, 8)
    junior_middle: AgeRange = (10, 16)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        for stage in Stage:
            low, high = self.bounds(stage)
            if low > high:
                raise ValueError(f"{stage.value}: the lower age {low} is above the upper age {high}")
        return self

    def bounds(self, stage: Stage) -> tuple[int, int]:
        low, high = getattr(self, stage.value)
        return low, high


DEFAULT_STAGE_AGES = StageAgeRanges()


class Pupil(Person):
    """The pupil (学生). A pupil without a citizen ID number (学籍号 `J`/`L`) names another
    document, or none (身份证件类型 其他); the citizen number, when given, is checked
    like every other and must agree with sex and birth date."""

    sex: SexCode
    birth_date: PastDate
    id_type: IdDocumentTypeCode
    other_id_no: Text | None = Field(
        default=None,
        max_length=32,
        description="身份证件号 of a document other than the resident ID card (passport...)",
        json_schema_extra={"kind": "document_number"},
    )

    @model_validator(mode="after")
    def _document_fits_type(self) -> Self:
        errors = RuleErrors("Pupil")
        if self.id_type is IdDocumentType.RESIDENT_ID and self.id_number is None:
            errors.add(("id_number",), "id_number_required", "the document type is the resident ID card but no number is given")
        elif self.id_type is not IdDocumentType.RESIDENT_ID and self.id_number is not None:
            errors.add(("id_type",), "id_type_mismatch", "a citizen ID number needs the type 居民身份证", self.id_type.label)
        errors.raise_any()
        return self


_STUDENT_NO = re.compile(r"^(?:G(\d{17}[\dX])|[JL][0-9A-Z]{4,30})$")


class SchoolEnrolment(Contract):
    """A pupil entering a stage at a school (新生入学), from the intake register.

    Business key: 学籍号 and 学段. The student number is the pupil's for life, so a
    pupil appears once per stage; the same pair sent again is a duplicate, with another
    school or month a correction. Rules: a `G` number is `G` + the pupil's citizen ID
    number; the age on the first day of the enrolment month fits the stage (bounds
    configurable, see `StageAgeRanges`).
    """

    contract_name: ClassVar[str] = "SchoolEnrolment"
    business_key_fields: ClassVar[tuple[str, ...]] = ("student_no", "stage")
    label_zh: ClassVar[str] = "入学"
    event_date_field: ClassVar[str | None] = "enrolment_month"
    division_field: ClassVar[str | None] = None

    student_no: str = Field(
        max_length=32, description="学籍号: G + citizen ID number, or a J/L number for a pupil without one"
    )
    student: Pupil = Field(description="学生")
    guardian: Person = Field(description="监护人1")
    school_code: str = Field(pattern=r"^\d{10}$", description="学校标识码 (10 digits)")
    school_name: Text | None = Field(default=None, max_length=100, description="学校名称")
    stage: StageCode
    enrolment_month: YearMonth = Field(description="入学年月")
    hukou_location: Address | None = Field(default=None, description="户口所在地")
    current_address: Address | None = Field(default=None, description="现住址")

    @field_validator("student_no", "school_code", mode="before")
    @classmethod
    def _trimmed(cls, value: Any) -> Any:
        return (value.strip().upper() or None) if isinstance(value, str) else value

    @field_validator("student_no")
    @classmethod
    def _student_no_form(cls, value: str) -> str:
        if not _STUDENT_NO.match(value):
            raise PydanticCustomError("student_no_format", "student number must be G + ID number, or start with J or L")
        return value

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> Self:
        errors = RuleErrors("SchoolEnrolment")
        match = _STUDENT_NO.match(self.student_no)
        if match and match.group(1) and match.group(1) != self.student.id_number:
            errors.add(("student_no",), "student_no_id_mismatch", "a G student number must be G + the pupil's ID number")
        ranges = _stage_ages(info.context)
        low, high = ranges.bounds(self.stage)
        age = self.age_at_enrolment()
        if not low <= age <= high:
            errors.add(
                ("stage",),
                "age_stage_mismatch",
                f"aged {age} at enrolment; {self.stage.label} takes {low}-{high}",
                f"{self.stage.label} {age}",
            )
        errors.raise_any()
        return self

    def age_at_enrolment(self) -> int:
        """Completed years (周岁) on the first day of the enrolment month."""
        year, month = (int(part) for part in self.enrolment_month.split("-"))
        return age_on(self.student.birth_date, dt.date(year, month, 1))


def _stage_ages(context: Any) -> StageAgeRanges:
    ranges = context.get("stage_ages") if isinstance(context, dict) else None
    if ranges is None:
        return DEFAULT_STAGE_AGES
    return ranges if isinstance(ranges, StageAgeRanges) else StageAgeRanges.model_validate(ranges)
