"""Masking of identifiers wherever people or logs see them.

ID numbers keep the first 6 and last 4 characters (`440781********4325`), names keep the
first character (`陈**`), addresses keep the first 6 characters, other identity documents
their first and last characters. Nothing here is reversible.
"""

from __future__ import annotations

import re

MAX_SHOWN = 64
# Anything shaped like an ID number is masked even in a field not marked as one.
_ID_LIKE = re.compile(r"\d{14,17}[\dXx]")


def mask_id(value: str) -> str:
    value = value.strip()
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_name(value: str) -> str:
    value = value.strip()
    return value[:1] + "**" if value else ""


def mask_address(value: str) -> str:
    value = value.strip()
    return value[:6] + "****" if len(value) > 6 else "****"


def mask_value(value: str | None, kind: str | None) -> str:
    """Mask `value` for a field of the given kind (id_number, name, address, or other)."""
    if value is None:
        return ""
    text = str(value)
    if kind == "id_number":
        return mask_id(text)
    if kind == "name":
        return mask_name(text)
    if kind == "address":
        return mask_address(text)
    if kind == "document_number":  # passport and other identity documents
        return mask_id(text) if len(text) > 10 else text[:1] + "*" * max(len(text) - 2, 1) + text[-1:]
    if _ID_LIKE.search(text):
        return _ID_LIKE.sub(lambda m: mask_id(m.group(0)), text)
    if len(text) > MAX_SHOWN:
        return text[:MAX_SHOWN] + f"…({len(text)} characters)"
    return text


# -- text from a file, or from a library that read one (issue 14) ------------------------
#
# Masking by field kind is not enough: a value lands in the field its position gives it,
# not the one it belongs to (a row shifted by one stray cell puts the name in 性别), and a
# library's error text quotes the value it choked on (`invalid literal for int() with
# base 10: '陈小明'`). So a value that failed validation in a field not marked personal is
# shown only when it is plainly not a name (digits, dates, short codes), and a library's
# message loses every quoted value and every run of non-ASCII text before anyone sees it.

# Digits, date and time punctuation, and at most three letters (a code such as `M`,
# `N/A`, `X`): not a name, not an address.
_PLAIN = re.compile(r"^(?=(?:[^A-Za-z]*[A-Za-z]){0,3}[^A-Za-z]*$)[0-9A-Za-z .:/+_-]{0,24}$")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|‘[^’]*’|“[^”]*”|「[^」]*」")
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")
_SAFE_SHEET = re.compile(r"^(Sheet|工作表|新生名册)\d*$")


def mask_untrusted(value: str | None, known: tuple[str, ...] = ()) -> str:
    """A value from a file that may be anything (it failed to be what its field holds):
    shown as is when it is plainly not personal (`_PLAIN` once the `known` words, the
    code tables' labels such as 初中 or 汉族, are taken out), else like a name (first
    character and `**`); ID-shaped runs are always masked."""
    if value is None:
        return ""
    text = str(value)
    if _ID_LIKE.search(text):
        return _ID_LIKE.sub(lambda m: mask_id(m.group(0)), text)
    rest = text.strip()
    for word in known:
        if word in rest:
            rest = rest.replace(word, " ")
    if _PLAIN.match(rest.strip()):
        return text
    return mask_name(text)


def mask_sheet_name(name: str) -> str:
    """A workbook's sheet name: a clerk may have named a sheet after a child."""
    return name if _SAFE_SHEET.match(name.strip()) else mask_untrusted(name)


def scrub_message(text: str | None, limit: int = 200) -> str:
    """The text of an error raised by a library (pydantic, openpyxl, lxml, csv, int()...)
    with whatever it quoted from the file taken out: quoted values become `'…'`, runs of
    non-ASCII text `…`, ID-shaped runs are masked. What is left is the library's own
    English wording, which is known not to be personal."""
    if not text:
        return ""
    text = _QUOTED.sub("'…'", str(text))
    text = _NON_ASCII_RUN.sub("…", text)
    text = _ID_LIKE.sub(lambda m: mask_id(m.group(0)), text)
    text = re.sub(r"\d{7,}", lambda m: mask_id(m.group(0)), text)
    return text[:limit] + ("…" if len(text) > limit else "")
