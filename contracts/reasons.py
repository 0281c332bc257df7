"""Plain-language reasons, in Chinese and English, for every error code a contract raises.

The rejection report (`NAME.errors.csv`) is read by clerks: each row carries both texts.
Codes not listed fall back to pydantic's English message.
"""

from __future__ import annotations

REASONS: dict[str, tuple[str, str]] = {
    "missing": ("必填项为空", "required field is empty"),
    "id_format": ("公民身份号码格式错误(应为18位)", "ID number must be 18 characters (17 digits and a digit or X), or 15 digits"),
    "id_check_char": ("公民身份号码校验位错误", "ID number check character is wrong"),
    "id_birth_date": ("公民身份号码中的出生日期不存在", "ID number holds an impossible birth date"),
    "id_birth_future": ("公民身份号码中的出生日期晚于今天", "ID number holds a birth date in the future"),
    "id_sex_mismatch": ("性别与公民身份号码不符", "sex disagrees with the ID number"),
    "id_birth_mismatch": ("出生日期与公民身份号码不符", "birth date disagrees with the ID number"),
    "date_format": ("日期格式无法识别", "date must be written as 2026-10-03, 2026/10/5, 20261008 or 2026年10月7日"),
    "date_impossible": ("日期不存在", "date does not exist in the calendar"),
    "date_future": ("日期晚于今天", "date lies in the future"),
    "sex_code": ("性别代码无效", "sex must be 男/女 or the code 1, 2, 0 or 9"),
    "int_parsing": ("应为整数", "must be a whole number"),
    "int_from_float": ("应为整数", "must be a whole number"),
    "greater_than_equal": ("数值过小", "value is below the allowed range"),
    "less_than_equal": ("数值过大", "value is above the allowed range"),
    "string_too_long": ("内容过长", "value is too long"),
    "string_pattern_mismatch": ("格式错误", "value does not have the required format"),
    "time_parsing": ("时间格式错误(应为 时:分)", "time must be written as HH:MM"),
    "extra_forbidden": ("多余字段", "unexpected field"),
    "row_truncated": ("行不完整(列数不足)", "row is truncated: fewer columns than the header"),
    "row_too_long": ("行的列数多于表头", "row has more columns than the header"),
    "field_too_large": ("字段过长", "field is larger than the limit"),
    "division_unknown": ("行政区划代码未知或已撤销(仅提示)", "division code is unknown or was retired (warning only)"),
    "credit_code_invalid": ("统一社会信用代码校验不通过(仅提示)", "unified social credit code does not check out (warning only)"),
    "duplicate_in_file": ("本文件中重复", "duplicate of an earlier row in this file"),
}


def reason(code: str, fallback: str = "") -> tuple[str, str]:
    return REASONS.get(code, ("数据无效", fallback or code))
