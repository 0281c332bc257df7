"""An adapter's rows turned into batches ready to store (准备入库的批次).

Everything about a row that does not depend on what the database already holds is done
here: parse, validate, warnings, canonical JSON, record hash, Merkle leaf hash, and the
row errors with their masked values and bilingual reasons. What is left for the writer
is what needs the database: deduplication by business key, versions, inserts, the Merkle
tree and the receipt (Gateway._store_rows).

The same code runs in the gateway process for small files and in the parsing process
for large ones (gateway/exchange/parallel.py), so both paths store the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import NamedTuple

from pydantic import ValidationError

from contracts.base import stored_business_key

from gateway.adapter import Adapter, RawRow, RowRejected, SourceFile
from gateway.masking import mask_untrusted, mask_value, personal_kinds, scrub_message
from gateway.plugins import get_manager

# The columns of a row error, in the order of the tuples in `PreparedBatch.issues`.
ISSUE_KEYS = ("exchange_id", "row_number", "field", "column_name", "value_masked", "code", "reason_zh", "reason_en", "level")
Issue = tuple[int | None, int, str, str, str, str, str, str, str]
"""One row error or warning, its values in `ISSUE_KEYS` order."""


_LABELS: tuple[str, ...] | None = None


def _code_labels() -> tuple[str, ...]:
    """Every code table's Chinese label (contracts/codes.py `CodeEnum`s), longest first:
    words known not to be personal, so `初中 5` or `汉族族` may be shown in a report."""
    global _LABELS
    if _LABELS is None:
        from contracts.codes import CodeEnum

        found: set[str] = set()
        pending = list(CodeEnum.__subclasses__())
        while pending:
            enum = pending.pop()
            pending += enum.__subclasses__()
            found.update(member.label for member in enum if member.label)
        _LABELS = tuple(sorted(found, key=len, reverse=True))
    return _LABELS


class PreparedBatch(NamedTuple):
    """Up to `size` rows of the file, validated. A plain tuple of lists of tuples: it
    crosses the pipe from the parsing process as one pickle, cheaply."""

    rows: int
    """Rows read (blank lines are not rows)."""
    records: list[tuple[str, str, str, str, str, int, bytes]]
    """(contract, schema version, stored business key (`contracts.base.stored_business_key`:
    with the sender in front where the contract's identity includes its source), record hash,
    canonical JSON, row number, Merkle leaf hash) of each valid row, in file order."""
    issues: list[Issue]
    """Row errors and warnings, in `ISSUE_KEYS` order, in file order."""
    rejected: int
    warnings: int
    versions: dict[str, str]
    """contract -> schema version of the records in this batch."""
    read: int = 0
    """Bytes of the file read so far (the progress bar of the parallel path)."""


class RowPreparer:
    """Turns one file's rows into `PreparedBatch`es for one exchange."""

    def __init__(self, adapter: Adapter, exchange_id: int | None, reasons: Mapping[str, tuple[str, str]] | None = None):
        self.adapter = adapter
        self.exchange_id = exchange_id
        # The registered reason texts (register_reasons: the built-ins and every plugin's).
        self._reasons = reasons if reasons is not None else get_manager().reasons()
        # Field kinds masked by their own rule (every registered personal kind, a plugin's
        # too); any other field's failing value may be anything.
        self._personal = personal_kinds()
        # (dotted field, code, message) -> (column, Chinese, English): a warning repeats
        # on many rows and its texts are looked up once.
        self._texts: dict[tuple[str, str, str], tuple[str, str, str]] = {}
        self._kinds: dict[tuple[str, ...], str] | None = None

    def batches(self, source: SourceFile, size: int, share: tuple[int, int] = (0, 1)) -> Iterator[PreparedBatch]:
        """The file's rows, `size` rows a batch (the last one may be shorter or empty).

        With `share` = (k, n), only batches k, k + n, k + 2n... are validated and yielded:
        n parsing processes each read the whole file (reading is the cheap part) and
        validate every n-th batch; the writer takes the batches in turn."""
        normalize, sha256, adapter, exchange_id = self.adapter.normalize, hashlib.sha256, self.adapter, self.exchange_id
        department = source.department  # the sending exchange's: part of a key that includes its source
        mine, count = share
        number = 0  # of the batch being filled
        rows = rejected = warnings = 0
        records: list[tuple[str, str, str, str, str, int, bytes]] = []
        issues: list[Issue] = []
        versions: dict[str, str] = {}
        append, texts, reason = records.append, self._texts, self._reason
        for raw in adapter.parse(source):
            rows += 1
            if count > 1 and number % count != mine:
                if rows >= size:  # another process's batch: only counted, to know where ours start
                    number += 1
                    rows = 0
                continue
            failure: ValidationError | RowRejected | None = None
            if raw.problem is None:
                try:
                    record = normalize(raw)
                except (ValidationError, RowRejected) as exc:
                    failure = exc
                else:
                    found = record.warnings()
                    if found:  # the hot path: no closure, one tuple per warning
                        for dotted, code, message in found:
                            text = texts.get((dotted, code, message))
                            if text is None:
                                text = texts[(dotted, code, message)] = (
                                    adapter.column_for(tuple(dotted.split("."))), *reason(code, message)
                                )
                            issues.append((exchange_id, raw.number, dotted, text[0], "", code, text[1], text[2], "warning"))
                        warnings += len(found)
                    payload = record.canonical()
                    contract, schema_version = record.contract_name, record.schema_version
                    append(
                        (
                            contract, schema_version, stored_business_key(record, department), sha256(payload).hexdigest(),
                            payload.decode("utf-8"), raw.number, sha256(b"\x00" + payload).digest(),
                        )
                    )
                    versions[contract] = schema_version
            if failure is not None or raw.problem is not None:
                self._row_errors(raw, failure, issues)
                rejected += 1
            if rows >= size:
                yield PreparedBatch(rows, records, issues, rejected, warnings, versions)
                number += 1
                rows = rejected = warnings = 0
                records, issues, versions = [], [], {}
                append = records.append
        if number % count == mine:
            yield PreparedBatch(rows, records, issues, rejected, warnings, versions)

    def _row_errors(self, raw: RawRow, failure: ValidationError | RowRejected | None, issues: list[Issue]) -> None:
        """Append the errors that reject `raw`: one per failing field, with the column the
        clerk knows and the value masked (gateway/masking.py)."""
        adapter = self.adapter

        def issue(field_name: str, column: str, value: str, code: str, fallback: str = "", texts: tuple[str, str] | None = None) -> None:
            zh, en = texts or self._reason(code, scrub_message(fallback))
            issues.append((self.exchange_id, raw.number, field_name, column, value, code, zh, en, "error"))

        if raw.problem is not None:
            code, column, detail = raw.problem
            issue("", column, "", code, detail, raw.reason)
        elif isinstance(failure, ValidationError):
            kinds = self._field_kinds()
            for error in failure.errors(include_url=False):
                loc = tuple(str(part) for part in error["loc"] if not isinstance(part, int))
                code = error["type"]
                if error.get("input") is None and (code.endswith("_type") or code == "missing"):
                    code = "missing"
                if code in ("id_sex_mismatch", "id_birth_mismatch"):
                    loc = (*loc, "id_number")
                value = error.get("input")
                kind = kinds.get(loc)
                # A value lands in the field its position gives it (a row shifted by one
                # stray cell puts the name in 性别): only a personal field's own masking,
                # or plainly non-personal text, is shown.
                shown = (
                    (mask_value(value, kind) if kind in self._personal else mask_untrusted(value, _code_labels()))
                    if isinstance(value, str) else ""
                )
                issue(".".join(loc), adapter.column_for(loc), shown, code, error.get("msg", ""))
        else:
            assert failure is not None
            # An adapter's own message may quote the value (and a plugin's may be anything).
            issue("", failure.column, "", failure.code, scrub_message(failure.message))

    def _reason(self, code: str, fallback: str = "") -> tuple[str, str]:
        """The code's registered (Chinese, English) texts; an unregistered one reads 数据无效."""
        found = self._reasons.get(code)
        return found if found is not None else ("数据无效", fallback or code)

    def _field_kinds(self) -> dict[tuple[str, ...], str]:
        """Which fields of the adapter's contracts hold IDs, names or addresses (for masking)."""
        if self._kinds is None:
            self._kinds = {}
            for contract in self.adapter.contracts:
                self._kinds.update(contract.field_kinds())
        return self._kinds
