"""The gateway's tables (SQLModel)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class Exchange(SQLModel, table=True):
    """One file (or pulled page) received from a department: 交换."""

    # At most one exchange supersedes another (a changed file's new content, or a
    # reprocessing, 重新处理): two clicks on "reprocess" can never make two.
    __table_args__ = (Index("uq_exchange_supersedes", "supersedes", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    department: str = Field(index=True)
    file_name: str
    source_path: str = Field(description="where the file was found, relative to the mailbox root")
    sha256: str = Field(index=True)
    size: int = 0
    encoding: str | None = None
    adapter: str | None = None
    status: str = Field(default="received", index=True, description="received | processed | duplicate | rejected")
    duplicate_of: int | None = Field(default=None, foreign_key="exchange.id")
    reason_code: str | None = None
    reason: str | None = None
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    corrected: int = 0
    warnings: int = 0
    attempts: int = 0
    received_at: dt.datetime = Field(default_factory=utcnow)
    processed_at: dt.datetime | None = None
    archived_path: str | None = Field(default=None, description="processed/ or rejected/ path once moved")
    outbox_stem: str | None = Field(default=None, description="receipt and report names in the outbox")
    left_changed: bool = Field(
        default=False, description="the inbox file changed after it was staged: its new content is a new exchange"
    )
    supersedes: int | None = Field(
        default=None, foreign_key="exchange.id", description="the exchange of this file's earlier, changed content"
    )


class Record(SQLModel, table=True):
    """An accepted record; each correction of a business key is a new version beside the old."""

    __table_args__ = (
        UniqueConstraint("contract", "business_key", "version", name="uq_record_version"),
        Index("ix_record_key", "contract", "business_key"),
        Index("ix_record_exchange_leaf", "exchange_id", "leaf_index"),
    )

    id: int | None = Field(default=None, primary_key=True)
    exchange_id: int = Field(foreign_key="exchange.id")
    contract: str
    schema_version: str
    business_key: str
    version: int = 1
    record_hash: str
    payload: str = Field(sa_column=Column(Text, nullable=False))
    row_number: int
    leaf_index: int


class RowError(SQLModel, table=True):
    """A refused row (or a warning on an accepted one), with the value already masked."""

    __table_args__ = (Index("ix_rowerror_exchange", "exchange_id", "row_number"),)

    id: int | None = Field(default=None, primary_key=True)
    exchange_id: int = Field(foreign_key="exchange.id")
    row_number: int
    field: str = ""
    column_name: str = ""
    value_masked: str = ""
    code: str
    reason_zh: str
    reason_en: str
    level: str = "error"


class Receipt(SQLModel, table=True):
    """A signed receipt (回执); `sequence` is its place in the receipt ledger, gapless."""

    sequence: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    exchange_id: int = Field(foreign_key="exchange.id", unique=True)
    body: str = Field(sa_column=Column(Text, nullable=False), description="canonical JSON, exactly as signed")
    signature: str = Field(sa_column=Column(Text, nullable=False), description="ASCII-armored detached signature")
    sha256: str
    previous_sha256: str
    key_fingerprint: str
    created_at: dt.datetime = Field(default_factory=utcnow)


class Checkpoint(SQLModel, table=True):
    """A signed head of the receipt ledger: its size and RFC 6962 root (DESIGN.md, "Receipts")."""

    id: int | None = Field(default=None, primary_key=True)
    tree_size: int = Field(index=True)
    root: str
    body: str = Field(sa_column=Column(Text, nullable=False), description="canonical JSON, exactly as signed")
    signature: str = Field(sa_column=Column(Text, nullable=False), description="ASCII-armored detached signature")
    key_fingerprint: str
    frontier: str = Field(
        sa_column=Column(Text, nullable=False),
        description="JSON list of the perfect subtrees' roots at tree_size, to extend the tree without rereading it",
    )
    created_at: dt.datetime = Field(default_factory=utcnow)


# -- routing under the sharing agreements (gateway/routing/, docs/routing.md) ----------


class Delivery(SQLModel, table=True):
    """One file of records for one recipient under one sharing agreement (交付): the records
    of one exchange (schedule `immediate`) or of a day or month (`daily`, `monthly`).

    status: `open` (collecting until `due_at`), `held` (no usable key of the recipient;
    `reason` says why), `waiting` (an earlier delivery of the same agreement is not out
    yet), `prepared` (encrypted, recorded, not yet written to the outbox), `delivered`,
    `acknowledged`, `empty` (the agreement admitted none of the records), `cancelled`
    (the agreement was removed)."""

    __table_args__ = (
        Index("ix_delivery_due", "status", "due_at"),
        Index("ix_delivery_agreement", "agreement", "contract", "batch_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    recipient: str = Field(index=True)
    agreement: str
    contract: str
    schedule: str = "immediate"
    batch_key: str = Field(description="exchange:ID | daily:YYYY-MM-DD | monthly:YYYY-MM (China Standard Time)")
    format: str
    status: str = Field(default="open")
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    file_name: str | None = None
    sha256: str | None = None
    size: int | None = None
    records: int = 0
    corrections: int = 0
    withdrawals: int = 0
    encrypted_to: str | None = Field(default=None, description="recipient key fingerprints, comma-separated")
    signing_key: str | None = None
    attempts: int = 0
    created_at: dt.datetime = Field(default_factory=utcnow)
    due_at: dt.datetime = Field(default_factory=utcnow)
    prepared_at: dt.datetime | None = None
    delivered_at: dt.datetime | None = None
    ack_due_at: dt.datetime | None = None
    acknowledged_at: dt.datetime | None = None
    ack_signed_by: str | None = None
    lease_owner: str | None = None
    lease_until: dt.datetime | None = None


class DeliveryExchange(SQLModel, table=True):
    """Which exchanges' records a delivery draws from (decided when the exchange is routed)."""

    delivery_id: int = Field(foreign_key="delivery.id", primary_key=True)
    exchange_id: int = Field(foreign_key="exchange.id", primary_key=True, index=True)


class RoutedExchange(SQLModel, table=True):
    """An accepted exchange whose records have been assigned to deliveries (once)."""

    exchange_id: int = Field(foreign_key="exchange.id", primary_key=True, sa_column_kwargs={"autoincrement": False})
    routed_at: dt.datetime = Field(default_factory=utcnow)
    deliveries: int = 0


class DeliveryRecord(SQLModel, table=True):
    """One record version carried by a delivery, as the recipient saw it: `change` is
    `new`, `correction` (of what `corrects_delivery_id` carried) or `withdrawal` (the new
    version no longer falls under the agreement; only the reference is sent)."""

    __table_args__ = (
        Index("ix_deliveryrecord_key", "agreement", "contract", "business_key"),
        Index("ix_deliveryrecord_delivery", "delivery_id"),
        Index("ix_deliveryrecord_record", "record_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id")
    record_id: int = Field(foreign_key="record.id")
    agreement: str
    contract: str
    business_key: str
    version: int
    record_hash: str = Field(description="sha256 of the whole stored record")
    projection_sha256: str = Field(description="sha256 of the minimized record the recipient received")
    record_ref: str = Field(description="the stable reference the recipient sees (first version's record id)")
    change: str = "new"
    corrects_delivery_id: int | None = None


class Acknowledgement(SQLModel, table=True):
    """An ACK-<delivery id>.json a recipient dropped into its inbox, accepted or refused."""

    id: int | None = Field(default=None, primary_key=True)
    department: str = Field(index=True)
    file_name: str
    delivery_id: int | None = Field(default=None, index=True, description="the delivery it acknowledges, when known")
    sha256: str
    status: str = Field(description="accepted | refused")
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    signed_by: str | None = None
    received_at: dt.datetime = Field(default_factory=utcnow)


class AuditEvent(SQLModel, table=True):
    """What happened to deliveries and acknowledgements, who it concerned and when; the
    detail never holds a full identifier or name."""

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(default_factory=utcnow, index=True)
    action: str
    department: str = Field(index=True)
    delivery_id: int | None = Field(default=None, index=True)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))


# -- scheduled pulls, jobs, assist-checks (issue 5: gateway/pulls/, scheduler.py, assist_checks.py) --


class PullCursor(SQLModel, table=True):
    """Where a pull source resumes (游标). It advances only after a page's exchange has
    committed; a page refused as a whole holds it (`blocked_*`) until the partner sends
    that page again readable, or an operator skips it (`gateway pulls skip`)."""

    source: str = Field(primary_key=True, description="[pulls.NAME] in gateway.toml")
    cursor: str | None = Field(default=None, description="the value passed as `since`; None: from the start")
    pages: int = Field(default=0, description="pages committed")
    last_exchange_id: int | None = Field(default=None, foreign_key="exchange.id")
    updated_at: dt.datetime = Field(default_factory=utcnow)
    checked_at: dt.datetime | None = Field(default=None, description="the last run that reached the partner without error")
    blocked_exchange_id: int | None = Field(default=None, foreign_key="exchange.id")
    blocked_sha256: str | None = None
    blocked_next_cursor: str | None = Field(default=None, description="the cursor the refused page named, if readable")
    blocked_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    blocked_at: dt.datetime | None = None


class PullPage(SQLModel, table=True):
    """The history of a pull source: each page fetched (and what became of it), and each
    operator's skip past a refused page."""

    __table_args__ = (Index("ix_pullpage_source", "source", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    at: dt.datetime = Field(default_factory=utcnow)
    event: str = Field(description="page | unchanged | empty | refused | skip")
    since: str | None = None
    next_cursor: str | None = None
    sha256: str | None = None
    size: int | None = None
    exchange_id: int | None = Field(default=None, foreign_key="exchange.id")
    status: str | None = Field(default=None, description="the exchange's status")
    records: int = 0
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))


class JobLease(SQLModel, table=True):
    """Who runs a scheduled job now (DESIGN.md, "Scale"). Taken by an UPDATE that only
    succeeds when the lease expired (or is the taker's own), or by the first INSERT;
    renewed while the job runs, released when it ends."""

    name: str = Field(primary_key=True)
    holder: str = Field(description="host:pid:random of the process holding it")
    expires_at: dt.datetime
    acquired_at: dt.datetime = Field(default_factory=utcnow)
    generation: int = Field(default=1, description="incremented whenever another holder takes it")


class JobState(SQLModel, table=True):
    """What `gateway jobs` shows: each job's last run, next run and last error."""

    name: str = Field(primary_key=True)
    schedule: str = ""
    last_started_at: dt.datetime | None = None
    last_finished_at: dt.datetime | None = None
    last_status: str | None = Field(default=None, description="ok | error | running")
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    last_summary: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    last_holder: str | None = None
    next_run_at: dt.datetime | None = None
    runs: int = 0
    failures: int = Field(default=0, description="consecutive failed runs")
    overruns: int = Field(default=0, description="times it was due while still running (not started again)")


class AssistCheck(SQLModel, table=True):
    """An assist-check request (协查 XCXX) from the national platform, with its due date,
    the draft answer from the county's own records, and the answer sent.

    status: `open` -> `sending` (answered; the FKXX is stored and being sent) -> `answered`
    (the platform took it); `refused` when the platform refused the FKXX (answer again)."""

    __table_args__ = (Index("ix_assistcheck_status_due", "status", "due_date"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(unique=True, description="XXBH")
    record_id: int = Field(foreign_key="record.id")
    exchange_id: int = Field(foreign_key="exchange.id")
    partner: str = Field(description="the sending county (FSDW)")
    urgency: str = Field(description="JJCD: 1 紧急, 2 急")
    categories: str = Field(description="requested LB codes, comma-separated")
    sent_date: dt.date = Field(description="FQSJ")
    received_at: dt.datetime = Field(description="when the gateway registered it (its exchange had committed)")
    due_date: dt.date = Field(index=True)
    due_rule: str
    due_provisional: bool = False
    status: str = Field(default="open", index=True)
    draft: str = Field(default="{}", sa_column=Column(Text, nullable=False), description="JSON: result, findings, remark")
    answer_result: str | None = Field(default=None, description="PDJG: 1 found, 0 not found")
    answer_remark: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    answered_at: dt.datetime | None = Field(default=None, description="FKSJ: when the officer answered")
    answered_by: str | None = None
    feedback_xml: str | None = Field(default=None, sa_column=Column(Text, nullable=True), description="the FKXX, exactly as sent")
    send_attempts: int = 0
    send_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    sent_at: dt.datetime | None = Field(default=None, index=True, description="when the platform accepted the FKXX")
    feedback_exchange_id: int | None = Field(default=None, foreign_key="exchange.id")


class NoticeItem(SQLModel, table=True):
    """A notice (通报 TBXX) from the national platform: feedback (XYFK 1) or a receipt is
    due; `handled` once an officer recorded it (`gateway notices done`) and, when feedback
    is due, the platform took it (`sending` until then)."""

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(unique=True, description="XXBH")
    record_id: int = Field(foreign_key="record.id")
    exchange_id: int = Field(foreign_key="exchange.id")
    partner: str = Field(description="FSDW")
    category: str = Field(description="LB")
    feedback_required: bool
    sent_date: dt.date
    received_at: dt.datetime
    due_date: dt.date = Field(index=True)
    due_rule: str = "notice"
    due_provisional: bool = False
    status: str = Field(default="open", index=True)
    handled_at: dt.datetime | None = None
    handled_by: str | None = None
    remark: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    feedback_xml: str | None = Field(
        default=None, sa_column=Column(Text, nullable=True), description="the FKXX answering a notice that asks for feedback (XYFK 1), as sent"
    )
    feedback_sent_at: dt.datetime | None = Field(default=None, description="when the platform took the feedback")
    feedback_exchange_id: int | None = Field(default=None, description="the receipted exchange of the feedback sent")
    send_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class OutgoingRequest(SQLModel, table=True):
    """An assist-check request the county sent (本县发出的协查请求 XCXX) to the national
    platform, tracked until the other side's answer (FKXX) arrives through the pull.

    status: `sending` (stored, not taken yet) -> `sent` (the platform took it; receipted)
    -> `answered` (the FKXX arrived); `refused` when the platform refused it."""

    __table_args__ = (Index("ix_outgoingrequest_status_due", "status", "due_date"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(unique=True, description="XXBH")
    to_division: str = Field(description="JSDW: the county asked")
    urgency: str = Field(description="JJCD: 1 紧急, 2 急")
    categories: str = Field(description="requested LB codes, comma-separated")
    sent_date: dt.date = Field(description="FQSJ")
    created_at: dt.datetime
    created_by: str
    due_date: dt.date = Field(index=True)
    due_rule: str
    due_provisional: bool = False
    status: str = Field(default="sending", index=True)
    request_xml: str = Field(sa_column=Column(Text, nullable=False), description="the JHXX with its XCXX, exactly as sent")
    send_attempts: int = 0
    send_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    sent_at: dt.datetime | None = Field(default=None, description="when the platform took it")
    exchange_id: int | None = Field(default=None, foreign_key="exchange.id", description="the receipted exchange of what was sent")
    answer_record_id: int | None = Field(default=None, foreign_key="record.id", description="the FKXX received")
    answer_result: str | None = Field(default=None, description="PDJG of the answer")
    answered_at: dt.datetime | None = Field(default=None, description="FKSJ of the answer")
    answer_received_at: dt.datetime | None = None


class OutgoingNotice(SQLModel, table=True):
    """A notice the county, as place of residence, owes the place of household registration
    (本县发出的通报 TBXX, 流入地向流出地通报, within 5 working days), drafted when a record
    that triggers one was accepted (a birth, marriage or divorce, death, adoption, residence
    permit or move away of someone registered elsewhere; gateway/platform/notices_out.py).

    The person's name, ID number and address stay in the triggering record (`record_id`);
    `notice_xml` holds the document only once sent. status: `draft` -> `sent` (the platform
    took it; receipted) -> `answered` (its feedback FKXX arrived); `refused` when the
    platform refused it. A draft that cannot leave (no village-level address) keeps its
    reason in `send_error`."""

    __table_args__ = (
        UniqueConstraint("record_id", "category", "party", name="uq_outgoingnotice_trigger"),
        Index("ix_outgoingnotice_status_due", "status", "due_date"),
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(unique=True, description="XXBH: TB-county-date-serial")
    record_id: int = Field(foreign_key="record.id", description="the accepted record that triggered it")
    category: str = Field(description="LB: 09 生育信息 ...")
    party: str = Field(default="", description="which person of the record it is about, where it names several (husband, wife, adopters.0); else empty")
    to_division: str = Field(description="JSDW: the place of household registration")
    feedback_required: bool = Field(default=True, description="XYFK: births ask for feedback, the other cases a receipt")
    created_at: dt.datetime
    due_date: dt.date = Field(index=True)
    due_rule: str = "notice_submit"
    due_provisional: bool = False
    status: str = Field(default="draft", index=True)
    notice_xml: str | None = Field(default=None, sa_column=Column(Text, nullable=True), description="the JHXX with its TBXX, as sent")
    send_attempts: int = 0
    send_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    sent_date: dt.date | None = Field(default=None, description="FQSJ, once sent")
    sent_at: dt.datetime | None = Field(default=None, description="when the platform took it")
    sent_by: str | None = None
    exchange_id: int | None = Field(default=None, foreign_key="exchange.id", description="the receipted exchange of what was sent")
    answer_record_id: int | None = Field(default=None, foreign_key="record.id", description="the FKXX received")
    answered_at: dt.datetime | None = Field(default=None, description="FKSJ of the feedback")


class LookupEntry(SQLModel, table=True):
    """One fact of the county's own records that assist-checks are answered from, imported
    from CSV: `source` is `wcba` (育龄妇女信息, women of childbearing age) or `ledger` (the
    manual 台账). The police household records are read from the stored records instead."""

    __table_args__ = (
        UniqueConstraint("source", "id_number", "category", "value_sha256", name="uq_lookup_fact"),
        Index("ix_lookup_person", "id_number", "source"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str
    id_number: str
    name: str | None = None
    category: str = Field(description="LB code 01-11")
    value: str = Field(sa_column=Column(Text, nullable=False))
    value_sha256: str
    recorded_on: dt.date | None = None
    import_file: str = ""
    imported_at: dt.datetime = Field(default_factory=utcnow)


class FileClaim(SQLModel, table=True):
    """A found file queued for processing, and which gateway process holds it (认领).

    Every process polling the inboxes queues what it finds; each then claims one row at a
    time (`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL) and heartbeats it while it
    works. A claim whose heartbeat is older than the takeover timeout belonged to a
    process that died: another takes it over.
    """

    __table_args__ = (UniqueConstraint("department", "path", name="uq_file_claim_path"),)

    id: int | None = Field(default=None, primary_key=True)
    department: str
    path: str
    name: str
    size: int
    mtime: float
    kind: str = "file"
    worker: str | None = Field(default=None, index=True)
    heartbeat_at: dt.datetime | None = None
    queued_at: dt.datetime = Field(default_factory=utcnow)
