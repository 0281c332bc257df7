"""The national floating-population exchange platform (全国流动人口计划生育服务管理信息
交换平台): assist-check requests (协查 `XCXX`), notices (通报 `TBXX`) and the feedback the
gateway answers a request with (协查反馈 `FKXX`).

Due dates are calendar days after the sent date (FQSJ), as the platform's rules state
them ("within 15 days", "within 30 days"; no mention of working days): 紧急 (JJCD `1`)
15 days, 急 (`2`) 30 days, a notice 30 days (feedback when XYFK is `1`, else a receipt).
The monthly cycle (submissions close on the 20th, receipt and feedback on the 27th) is a
scheduling matter, not part of a message.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from contracts.base import Contract, ContractModel
from contracts.codes import CodeEnum, code_parser
from contracts.fields import Address, Date, DivisionCode, Text
from contracts.housing import ChinaTime
from contracts.identity import IdNumber
from contracts.person import Person
from contracts.rules import RuleErrors

NOTICE_DAYS = 30


class ContentCategory(CodeEnum):
    """信息类别 (LB): what a request asks for, or what a notice is about."""

    BASIC = ("01", "基本信息")
    SPOUSE = ("02", "配偶信息")
    PREGNANCY = ("03", "妊娠信息")
    CHILDREN = ("04", "子女信息")
    INFLOW = ("05", "流入信息")
    OUTFLOW = ("06", "流出信息")
    THREE_CHECKS = ("07", "三查信息")
    SURGERY = ("08", "手术服务信息")
    CHILDBIRTH = ("09", "生育信息")
    SOCIAL_MAINTENANCE_FEE = ("10", "社会抚养费信息")
    ASSIST_ITEM = ("11", "协查项目")


class Urgency(CodeEnum):
    """紧急程度 (JJCD) of an assist-check request, and the days it leaves to answer."""

    URGENT = ("1", "紧急")
    PRIORITY = ("2", "急")

    @property
    def days(self) -> int:
        return 15 if self is Urgency.URGENT else 30


class Direction(CodeEnum):
    """协查方向 (FX): which end of a migrant's life asks the other."""

    HJD_TO_XJZD = ("HJD_TO_XJZD", "户籍地发往现居住地")
    XJZD_TO_HJD = ("XJZD_TO_HJD", "现居住地发往户籍地")


class MatchResult(CodeEnum):
    """匹配结果 (PDJG) of an assist check."""

    FOUND = ("1", "查到")
    NOT_FOUND = ("0", "未查到")


CATEGORY_MESSAGE = "category (LB) must be a code 01-11"
_parse_category = code_parser(ContentCategory, "category_code", CATEGORY_MESSAGE, width=2)
ContentCategoryCode = Annotated[ContentCategory, BeforeValidator(_parse_category), Field(description="信息类别 (LB)")]
UrgencyCode = Annotated[
    Urgency,
    BeforeValidator(code_parser(Urgency, "urgency_code", "urgency (JJCD) must be 1 (紧急) or 2 (急)")),
    Field(description="紧急程度 (JJCD)"),
]
DirectionCode = Annotated[
    Direction,
    BeforeValidator(code_parser(Direction, "direction_code", "direction (FX) must be HJD_TO_XJZD or XJZD_TO_HJD")),
    Field(description="协查方向 (FX)"),
]
MatchResultCode = Annotated[
    MatchResult,
    BeforeValidator(code_parser(MatchResult, "result_code", "match result (PDJG) must be 1 (found) or 0 (not found)")),
    Field(description="匹配结果 (PDJG)"),
]


def _categories(value: Any) -> Any:
    # The platform lists them in one attribute: LB="01,03,07".
    if isinstance(value, str):
        return [part for part in re.split(r"[\s,，、;；]+", value.strip()) if part]
    return value


def _sorted_unique(values: list[ContentCategory]) -> list[ContentCategory]:
    # Order and repetition carry no meaning; one spelling keeps the record hash stable.
    return sorted(set(values), key=lambda member: member.value)


def _flag(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return value.strip() == "1"
    raise PydanticCustomError("flag_code", "the flag must be 1 or 0")


MessageId = Annotated[Text, Field(max_length=64, description="信息编号 (XXBH)")]


class PlatformBatch(ContractModel):
    """Who exchanged the message (交换信息 `JHXX`): kept with each record so the answer can
    go back to the sender. The document's send time (FSSJ) and cursor (CURSOR) are left
    out on purpose: the platform redelivers a message in later documents, and a
    redelivery must count as a duplicate, not as a correction. The pull stores the cursor."""

    version: Text = Field(max_length=16, description="版本号 (BBH)")
    sender: DivisionCode = Field(description="发送单位 county code (FSDW)")
    receiver: DivisionCode = Field(description="接收单位 county code (JSDW)")


class Subject(Person):
    """The person a message is about (对象 `DX`): always with an ID number."""

    id_number: IdNumber
    current_residence: Address | None = Field(default=None, description="现居住地 (XJZD)")


class _DueDate:
    """Mixin: `due_date` derived from `sent_date`; a stated one must agree."""

    def _check_due_date(self, days: int, title: str) -> None:
        expected = self.sent_date + dt.timedelta(days=days)  # type: ignore[attr-defined]
        stated = self.due_date  # type: ignore[attr-defined]
        if stated is None:
            object.__setattr__(self, "due_date", expected)  # frozen model: derive once, here
        elif stated != expected:
            errors = RuleErrors(title)
            errors.add(("due_date",), "due_date_mismatch", f"due date must be {expected.isoformat()}", stated)
            errors.raise_any()


class AssistCheckRequest(_DueDate, Contract):
    """An assist-check request (协查请求 `XCXX`): another county asks what this one knows
    about a person, by category. Due 15 days after sending when 紧急, 30 when 急.
    Business key: the message id (XXBH)."""

    contract_name: ClassVar[str] = "AssistCheckRequest"
    business_key_fields: ClassVar[tuple[str, ...]] = ("message_id",)
    label_zh: ClassVar[str] = "协查请求"
    event_date_field: ClassVar[str | None] = "sent_date"
    division_field: ClassVar[str | None] = None

    message_id: MessageId
    urgency: UrgencyCode
    sent_date: Date = Field(description="发起时间 (FQSJ)")
    direction: DirectionCode
    subject: Subject
    categories: Annotated[
        list[ContentCategoryCode], BeforeValidator(_categories), AfterValidator(_sorted_unique)
    ] = Field(min_length=1, description="协查内容类别 (XCNR LB)")
    request_text: Text | None = Field(default=None, max_length=2000, description="协查内容 (XCNR text)")
    due_date: Date | None = Field(default=None, description="答复期限: derived from sent_date and urgency")
    batch: PlatformBatch

    @model_validator(mode="after")
    def _due(self) -> Self:
        self._check_due_date(self.urgency.days, "AssistCheckRequest")
        return self


class PlatformNotice(_DueDate, Contract):
    """A notice (通报 `TBXX`) about a person, e.g. a birth. Feedback is due within 30
    days when XYFK is `1` (births, social maintenance fees), otherwise a receipt within
    30 days. Business key: the message id (XXBH)."""

    contract_name: ClassVar[str] = "PlatformNotice"
    business_key_fields: ClassVar[tuple[str, ...]] = ("message_id",)
    label_zh: ClassVar[str] = "平台通报"
    event_date_field: ClassVar[str | None] = "sent_date"
    division_field: ClassVar[str | None] = None

    message_id: MessageId
    category: ContentCategoryCode
    feedback_required: Annotated[bool, BeforeValidator(_flag)] = Field(description="需要反馈 (XYFK)")
    sent_date: Date = Field(description="发起时间 (FQSJ)")
    subject: Subject
    notice_text: Text | None = Field(default=None, max_length=2000, description="通报内容 (TBNR)")
    due_date: Date | None = Field(default=None, description="反馈或回执期限: sent_date + 30 days")
    batch: PlatformBatch

    @model_validator(mode="after")
    def _due(self) -> Self:
        self._check_due_date(NOTICE_DAYS, "PlatformNotice")
        return self


class CategoryFinding(ContractModel):
    """What was found for one requested category (反馈内容)."""

    category: ContentCategoryCode
    value: Text = Field(max_length=2000, description="查到的信息")


class AssistCheckFeedback(Contract):
    """The answer to an assist-check request (协查反馈 `FKXX`), which the gateway produces.
    Found (PDJG `1`) carries the values per category; not found (`0`) carries none and
    requires a remark (BZ). Business key: the request's message id (XXBH)."""

    contract_name: ClassVar[str] = "AssistCheckFeedback"
    business_key_fields: ClassVar[tuple[str, ...]] = ("message_id",)
    label_zh: ClassVar[str] = "协查反馈"
    event_date_field: ClassVar[str | None] = "answered_at"
    division_field: ClassVar[str | None] = None

    message_id: MessageId
    result: MatchResultCode
    remark: Text | None = Field(default=None, max_length=500, description="备注 (BZ): required when not found")
    answered_at: ChinaTime = Field(description="反馈时间 (FKSJ)")
    findings: list[CategoryFinding] = Field(default_factory=list, description="查到的信息, per category")

    @model_validator(mode="after")
    def _result_rules(self) -> Self:
        errors = RuleErrors("AssistCheckFeedback")
        if self.result is MatchResult.NOT_FOUND:
            if self.remark is None:
                errors.add(("remark",), "remark_required", "a remark (BZ) is required when the person was not found")
            if self.findings:
                errors.add(("findings",), "findings_not_found", "a not-found answer carries no findings")
        elif not self.findings:
            errors.add(("findings",), "findings_required", "a found answer carries the values found per category")
        errors.raise_any()
        return self
