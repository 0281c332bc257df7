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
