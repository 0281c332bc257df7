"""Masking of identifiers wherever people or logs see them.

ID numbers keep the first 6 characters (the division) and the last one
(`440781***********5`): never the sequence digits, because a list that shows a person's
birth date beside a number keeping its last four (`440781` + eight stars + `4325`, beside 1992-03-15)
gives the whole number back. Names keep the
first character (`陈**`), addresses keep the first 6 characters, other identity documents
their first and last characters, phone numbers their first 3 and last 4 digits
(`138****5678`; a landline its area code and last 4, `0762-***4567`). Nothing here is reversible.

Each way of masking is a `FieldKind` (字段类别): the built-in ones below, and any a plugin
registers with the `register_field_kinds` hook. A contract field names its kind
(`json_schema_extra={"kind": "phone"}`) and `mask_value` looks the kind up here.
"""

from __future__ import annotations

import hashlib
import logging
import re
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

MAX_SHOWN = 64
# Anything shaped like an ID number is masked even in a field not marked as one: an 18-character
# number (17 digits and a digit or X), a 15-digit legacy one (一代证, before 1999), and any
# longer run of digits, whole, because an ID number inside it (a platform message id, 协查编号
# XXBH, that embeds one; two numbers run together) must not show its sequence digits either.
_ID_LIKE = re.compile(r"(?<![0-9])(?:[0-9]{17}[Xx]|[0-9]{15,})")
# Anything shaped like a phone number likewise: a mobile (11 digits from 13-19) or a
# landline with its area code (`0762-1234567`), not part of a longer run of digits.
_PHONE_LIKE = re.compile(r"(?<![0-9])(?:1[3-9]\d{9}|0\d{2,3}-\d{7,8})(?![0-9])")


def mask_identifiers(text: str) -> str:
    """Free text with every ID-shaped and phone-shaped run masked (the rest as it is)."""
    if not text:
        return text
    text = _ID_LIKE.sub(lambda m: mask_id(m.group(0)), text)
    return _PHONE_LIKE.sub(lambda m: mask_phone(m.group(0)), text)


def _has_identifier(text: str) -> bool:
    return bool(_ID_LIKE.search(text) or _PHONE_LIKE.search(text))


def mask_id(value: str) -> str:
    value = value.strip()
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 7) + value[-1:]


def mask_name(value: str) -> str:
    value = value.strip()
    return value[:1] + "**" if value else ""


def mask_address(value: str) -> str:
    value = value.strip()
    return value[:6] + "****" if len(value) > 6 else "****"


_LANDLINE = re.compile(r"^(0\d{2,3})-(\d{5,})$")


def mask_phone(value: str) -> str:
    """A mobile number keeps its first 3 and last 4 digits (`138****5678`); a landline
    (`0762-1234567`) its area code and last 4 (`0762-***4567`); anything else its digits
    masked the mobile way, or all of them when fewer than 8."""
    text = value.strip()
    landline = _LANDLINE.match(text)
    if landline:
        area, number = landline.groups()
        return f"{area}-" + "*" * (len(number) - 4) + number[-4:]
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 8:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    return "*" * max(len(digits), 4)


def mask_document_number(value: str) -> str:
    """A passport or other identity document: first and last characters."""
    return mask_id(value) if len(value) > 10 else value[:1] + "*" * max(len(value) - 2, 1) + value[-1:]


def mask_plain(value: str) -> str:
    """A value known not to be personal (a code): shown, ID-shaped runs masked, long text cut."""
    if _has_identifier(value):
        return mask_identifiers(value)
    if len(value) > MAX_SHOWN:
        return value[:MAX_SHOWN] + f"…({len(value)} characters)"
    return value


@dataclass(frozen=True)
class FieldKind:
    """One way a field is shown (字段类别): its name (the `kind` a contract field is marked
    with), Chinese and English labels, whether it is personal data (the privacy scan and
    `gateway contracts show` say so) and the function that masks it."""

    name: str
    label_zh: str
    label_en: str
    personal: bool
    mask: Callable[[str], str]
    # A made-up value `gateway contracts show` and the console mask to show how (never a real one).
    example: str = "ABC1234567"


BUILTIN_KINDS: tuple[FieldKind, ...] = (
    FieldKind("name", "姓名", "name", True, mask_name, "张三丰"),
    FieldKind("id_number", "公民身份号码", "citizen ID number", True, mask_id, "110101190001011234"),
    FieldKind("address", "地址", "address", True, mask_address, "某某省某某市某某路1号"),
    FieldKind("phone", "电话号码", "phone number", True, mask_phone, "13900000000"),
    FieldKind("document_number", "证件号码", "identity document number", True, mask_document_number, "E00000000"),
    FieldKind("free_text", "自由文本", "free text", True, mask_name, "备注文字"),
    FieldKind("credit_code", "统一社会信用代码", "unified social credit code", False, mask_plain, "91440700000000000X"),
    # Not personal: a code of the division tables, which a plugin's contract may mark.
    FieldKind("division_code", "行政区划代码", "administrative division code", False, mask_plain, "440781"),
)

# The registry of kinds lives here, in the lowest layer, because every log line, report and
# screen masks through `mask_value` and may not import the plugin manager (gateway.plugins
# sits above). It starts with the built-in kinds, so masking is safe before any plugin is
# loaded; the plugin manager installs the registered kinds (`install_kinds`) when they are
# first asked for, and sets `_loader` so that a kind not known here makes it ask.
_KINDS: dict[str, FieldKind] = {kind.name: kind for kind in BUILTIN_KINDS}
_installed = False
_loader: Callable[[], Mapping[str, FieldKind]] | None = None


def install_kinds(kinds: Mapping[str, FieldKind]) -> None:
    """Make `kinds` (every registered kind, from the plugin manager) the ones `mask_value` uses."""
    global _KINDS, _installed
    _KINDS = {**{kind.name: kind for kind in BUILTIN_KINDS}, **kinds}
    _installed = True


def set_kind_loader(loader: Callable[[], Mapping[str, FieldKind]] | None) -> None:
    """The call that gives every registered kind (`gateway.plugins` sets it)."""
    global _loader
    _loader = loader


def field_kind(name: str | None) -> FieldKind | None:
    """The registered kind of this name, asking the plugin manager for one not known here."""
    global _KINDS
    if name is None:
        return None
    found = _KINDS.get(name)
    if found is None and _loader is not None:
        _KINDS = {**_loader(), **_KINDS}  # adds what is missing, never replaces a kind in use
        found = _KINDS.get(name)
    return found


def personal_kinds() -> frozenset[str]:
    """The names of every registered personal kind (what the privacy scan must find masked)."""
    if not _installed and _loader is not None:
        install_kinds(_loader())
    return frozenset(name for name, kind in _KINDS.items() if kind.personal)


def mask_value(value: str | None, kind: str | None) -> str:
    """Mask `value` for a field of the given kind (a registered `FieldKind`: id_number, name,
    address, phone, ... or a plugin's); a value of no kind or an unknown one is shown with
    ID- and phone-shaped runs masked and long text cut."""
    if value is None:
        return ""
    text = str(value)
    found = field_kind(kind)
    if found is not None:
        return found.mask(text)
    return mask_plain(text)


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
    if _has_identifier(text):
        return mask_identifiers(text)
    rest = text.strip()
    for word in known:
        if word in rest:
            rest = rest.replace(word, " ")
    if _PLAIN.match(rest.strip()):
        return text
    return mask_name(text)


def mask_header_cell(cell: str, known: Iterable[str] = ()) -> str:
    """A header cell as a message shows it (`header_duplicate`): as is when it is one of the
    `known` column names of the format, else masked like any untrusted value (a clerk may
    have typed a child's name into row 1)."""
    return cell if cell in set(known) else mask_untrusted(cell)


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
    text = mask_identifiers(text)
    text = re.sub(r"\d{7,}", lambda m: mask_id(m.group(0)), text)
    return text[:limit] + ("…" if len(text) > limit else "")


def scrubbed_traceback(exc: BaseException) -> str:
    """Where `exc` was raised, for a log: the frames (file, line, function, source line: the
    program's own text) of it and of its causes, each cause named by its type and its
    message scrubbed (`scrub_message`), never the raw text, which may quote the file."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(traceback.format_tb(current.__traceback__))
        parts.append(f"{type(current).__name__}: {scrub_message(str(current))}\n{frames}".rstrip())
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return "\n  caused by ".join(parts)


# -- file names (文件名) -------------------------------------------------------------------
#
# A department's file name may hold personal data (a clerk names a file after a child, or
# puts an ID number in it), so everything but the signed receipt shows a drop's name
# masked: its first character, a short digest that tells two names apart, and its
# extension (`出…#3fa2c1.csv`). The receipt keeps the name as the sender gave it
# (docs/security.md says why).


def mask_file_name(name: str | None) -> str:
    """A drop's file name as a log line, the console, a listing or a delivery may show it.

    The rule for names (姓名) in file names: nothing of the stem but its first character is
    shown, whatever it holds. A file name is not known to hold a name, and no rule that
    looks for one can be trusted to find it: a name written in pinyin (`chenxiaoming.csv`)
    or in characters that are also words (`高山`, `金花`) passes any list of known words,
    a refused file has no records whose names could be matched, and a name of someone not
    in the file (the clerk's own) matches none. Showing only the first character (like
    `mask_name`), a leading digit as `?`, masks every identifier kind at once (ID numbers
    of 18 and 15 digits, phone numbers, names); the six-character digest tells two names
    apart, and the department, date and counts beside it tell the operator which file it is."""
    if not name:
        return ""
    raw = name.encode("utf-8", "surrogateescape")
    digest = hashlib.sha256(raw).hexdigest()[:6]
    path = PurePosixPath(name)
    suffix = path.suffix if len(path.suffix) <= 8 and path.suffix.isascii() and path.suffix.isprintable() else ""
    stem = name[: len(name) - len(suffix)] if suffix else name
    head = "".join(c if c.isprintable() and not 0xDC80 <= ord(c) <= 0xDCFF and not c.isdigit() else "?" for c in stem[:1])
    return f"{head}…#{digest}{suffix}"


def mask_file_path(path: object) -> str:
    """A path whose last part is a drop's name (`hospital/inbox/…`): the folders as they
    are (the gateway's own), the name masked."""
    text = str(path)
    folder, sep, name = text.rpartition("/")
    return f"{folder}{sep}{mask_file_name(name)}"


# -- receipts as the console shows them (回执) ---------------------------------------------


def mask_receipt_body(body: str) -> str:
    """A signed receipt's JSON as a page or an API answer shows it: the sender's file name
    masked (`mask_file_name`), every other text masked like free text (`mask_identifiers`),
    hashes, counts and keys as signed. It no longer verifies: the signed bytes are a
    download of their own (docs/security.md says who may have them)."""
    import json

    try:
        document = json.loads(body)
    except ValueError:
        return mask_identifiers(body)

    def shown(value: object, key: str = "") -> object:
        if isinstance(value, dict):
            return {k: shown(v, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [shown(v, key) for v in value]
        if isinstance(value, str):
            if key == "file_name":
                return mask_file_name(value)
            if _HEX.fullmatch(value):
                return value  # a hash or a key fingerprint: never personal, and masking would garble it
            return mask_identifiers(value)
        return value

    return json.dumps(shown(document), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


_HEX = re.compile(r"[0-9a-fA-F]{32,128}")


class MaskingFilter(logging.Filter):
    """A log handler's last guard (日志遮蔽): every line it writes has its ID- and phone-shaped
    runs masked (`mask_identifiers`), whatever a module passed as an argument (a platform
    message id that embeds an ID number, a path). Modules still mask what they log; this
    catches what one forgot."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_identifiers(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
