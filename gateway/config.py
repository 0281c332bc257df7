"""Settings: `gateway.toml` in the gateway home, overridden by `GATEWAY_*` variables.

The home is `--home`, else `GATEWAY_HOME`, else `./gateway-home`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
import tomllib
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.errors import ConfigError

DEPARTMENTS = (
    "police",
    "hospital",
    "civil-affairs",
    "school",
    "housing",
    "national-platform",
    "population-office",
)
CONFIG_FILE = "gateway.toml"


def default_home() -> Path:
    return Path(os.environ.get("GATEWAY_HOME") or "gateway-home")


class SftpServer(BaseModel):
    """One `[sftp.NAME]` table: an SFTP server holding department trees
    (docs/deploy/sftp.md). The key's passphrase is never here: it comes from
    `GATEWAY_SFTP_<NAME>_PASSPHRASE` (or `GATEWAY_SFTP_PASSPHRASE`)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1)
    port: int = Field(default=22, ge=1, le=65535)
    username: str = Field(min_length=1, description="the gateway's own account on the server")
    key_file: Path = Field(description="the gateway's private key; relative paths are in the home")
    known_hosts: Path | None = Field(default=None, description="pinned host keys; default HOME/known_hosts")
    root: str = Field(default="/", description="remote folder holding <department>/{inbox,outbox,processed,rejected}")
    departments: list[str] = Field(min_length=1, description="departments whose mailbox is on this server")
    connect_timeout: float = Field(default=15.0, gt=0, description="seconds for TCP connect, SSH handshake and login")
    timeout: float = Field(default=60.0, gt=0, description="seconds any one SFTP request may take")
    reconnect_max_seconds: float = Field(default=300.0, gt=0, description="longest wait between reconnection attempts")


def sftp_passphrase(name: str) -> str | None:
    """The passphrase of server NAME's key: `GATEWAY_SFTP_<NAME>_PASSPHRASE`, else `GATEWAY_SFTP_PASSPHRASE`."""
    specific = f"GATEWAY_SFTP_{name.upper().replace('-', '_')}_PASSPHRASE"
    return os.environ.get(specific) or os.environ.get("GATEWAY_SFTP_PASSPHRASE") or None


def parse_every(text: str) -> float:
    """Seconds in an interval such as `15m`, `1h30m`, `90s`, `2d` (or a plain number of seconds)."""
    import re

    spec = str(text).strip().lower()
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    if re.fullmatch(r"\d+(\.\d+)?", spec):
        seconds = float(spec)
    elif re.fullmatch(r"(\d+(\.\d+)?[dhms])+", spec):
        seconds = sum(float(n) * units[u] for n, _, u in re.findall(r"(\d+(\.\d+)?)([dhms])", spec))
    else:
        raise ValueError(f"every: {text!r} is not an interval like 15m, 1h, 90s")
    if seconds <= 0:
        raise ValueError(f"every: {text!r} must be longer than 0 seconds")
    return seconds


PULL_KINDS = {"housing": ("housing", "housing-registry", "15m"), "platform": ("national-platform", "national-platform", "1h")}


class PullSource(BaseModel):
    """One `[pulls.NAME]` table: a partner API the gateway pulls on a schedule
    (docs/pulls.md). The bearer token is never here: it comes from the variable named by
    `token_env` (default `GATEWAY_PULL_<NAME>_TOKEN`)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["housing", "platform"] = Field(description="housing: occupancy-changes JSON; platform: JHXX inbox XML")
    url: str = Field(min_length=1, description="the partner's base URL, https:// (http:// only on loopback)")
    department: str | None = Field(default=None, description="whose exchange a page is (default: by kind)")
    adapter: str | None = Field(default=None, description="the adapter that reads a page (default: by kind)")
    every: str | None = Field(default=None, description="interval, e.g. 15m, 1h, 90s (default: housing 15m, platform 1h)")
    at: list[str] = Field(default_factory=list, description="or times of day in China time, e.g. [\"08:00\", \"14:00\"]")
    token_env: str | None = Field(default=None, description="variable holding the bearer token")
    division: str | None = Field(default=None, pattern=r"^\d{6}$", description="platform: this county's division code (FSDW of what it sends)")
    send_notices: bool = Field(default=False, description="platform: send the county's own notices (通报) as soon as drafted")
    limit: int = Field(default=100, ge=1, le=10_000, description="items per page asked of the housing API")
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0, description="seconds the partner may stay silent mid-response")
    retries: int = Field(default=5, ge=0, description="retries per request (connection errors, 429, 502, 503, 504)")
    backoff: float = Field(default=2.0, ge=0, description="exponential backoff base in seconds: 2, 4, 8, ...")
    backoff_jitter: float = Field(default=1.0, ge=0, description="up to this many seconds added at random to each wait")
    backoff_max: float = Field(default=300.0, ge=0, description="longest backoff wait")
    retry_after_max: float = Field(default=600.0, ge=0, description="longest Retry-After honoured; longer ones fail the run")
    max_pages: int = Field(default=100, ge=1, description="pages per run; the next run continues")
    max_page_mb: float = Field(default=256.0, gt=0, description="a larger page is refused")
    allow_insecure_http: bool = Field(default=False, description="allow http:// to a host other than loopback")
    enabled: bool = True

    @model_validator(mode="after")
    def _checks(self) -> PullSource:
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url {self.url!r} must be http(s)://host[:port][/path]")
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1") and not self.allow_insecure_http:
            raise ValueError(f"url {self.url!r}: the token would travel in clear text; use https:// (or allow_insecure_http = true)")
        if self.every and self.at:
            raise ValueError("give either every or at, not both")
        if self.every is not None:
            parse_every(self.every)
        for moment in self.at:
            hour, _, minute = moment.partition(":")
            if not (hour.isdigit() and minute.isdigit() and 0 <= int(hour) < 24 and 0 <= int(minute) < 60 and len(minute) == 2):
                raise ValueError(f"at: {moment!r} is not a time of day HH:MM")
        department, adapter, every = PULL_KINDS[self.kind]
        self.department = self.department or department
        self.adapter = self.adapter or adapter
        if not self.at:
            self.every = self.every or every
        return self


class MailBox(BaseModel):
    """The `[mail]` table: the population office's mailbox (固定电子信箱, docs/deploy/mail.md),
    read over IMAP (IMAPS or STARTTLS, the server's certificate checked against `ca_file`
    or pinned by `cert_sha256`). The passwords are never here: they come from the
    variables named by `password_env` and `smtp_password_env`."""

    model_config = ConfigDict(extra="forbid")

    imap_host: str = Field(min_length=1)
    imap_port: int = Field(default=993, ge=1, le=65535)
    security: Literal["imaps", "starttls"] = Field(default="imaps", description="imaps (port 993) or starttls (port 143)")
    ca_file: Path | None = Field(default=None, description="the CA that signed the server's certificate; relative paths are in the home")
    cert_sha256: str | None = Field(
        default=None, pattern=r"^([0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$", description="or the server certificate's sha256, pinned"
    )
    user: str = Field(min_length=1, description="the mailbox's login")
    password_env: str = Field(default="GATEWAY_MAIL_PASSWORD", min_length=1, description="variable holding the IMAP password")
    folder: str = Field(default="INBOX", min_length=1)
    processed_folder: str = Field(default="Processed", min_length=1)
    rejected_folder: str = Field(default="Rejected", min_length=1)
    held_folder: str = Field(default="Held", min_length=1)
    timeout: float = Field(default=30.0, gt=0, description="seconds any one IMAP or SMTP exchange may take")
    max_message_mb: float = Field(default=50.0, gt=0, description="a larger message is rejected, nothing in it processed")
    max_attachment_mb: float = Field(default=25.0, gt=0, description="a larger attachment is not processed (the reply says so)")
    senders: dict[str, str] = Field(default_factory=dict, description="[mail.senders] address = department")
    smtp_host: str | None = Field(default=None, description="submission server for the replies (default: imap_host)")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str | None = Field(default=None, description="default: user")
    smtp_password_env: str | None = Field(default=None, description="variable holding the SMTP password (default: password_env)")
    from_address: str | None = Field(default=None, description="the replies' From (default: user)")

    @model_validator(mode="after")
    def _checks(self) -> MailBox:
        if self.ca_file is None and self.cert_sha256 is None:
            raise ValueError(
                "[mail] 需要 ca_file 或 cert_sha256 以核验邮件服务器证书 / needs ca_file or cert_sha256 to check the mail server's certificate"
            )
        folders = [self.folder, self.processed_folder, self.rejected_folder, self.held_folder]
        if len(set(folders)) != len(folders):
            raise ValueError("[mail] 的各文件夹必须互不相同 / folder, processed_folder, rejected_folder and held_folder must differ")
        lowered: dict[str, str] = {}
        for address, department in self.senders.items():
            key = address.strip().lower()
            if "@" not in key or key.startswith("@") or key.endswith("@"):
                raise ValueError(f"[mail.senders] {address!r} 不是电子邮件地址 / is not an e-mail address")
            if key in lowered:
                raise ValueError(f"[mail.senders] {address!r} 重复 / is listed twice")
            lowered[key] = department
        self.senders = lowered
        return self

    def password(self) -> str:
        return _required_secret(self.password_env, "IMAP")

    def smtp_password(self) -> str:
        return _required_secret(self.smtp_password_env or self.password_env, "SMTP")


def _required_secret(variable: str, what: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(f"[mail] 的{what}密码未设置:请设置环境变量 {variable} / the {what} password is not set: set {variable}")
    return value


class Settings(BaseSettings):
    """Everything an operator can set. Each key can be overridden by `GATEWAY_<KEY>`."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="forbid")

    home: Path
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite at HOME/gateway.db")
    mailbox: Path = Field(default=Path("mailbox"), description="local mailbox root, relative to the home")
    departments: list[str] = Field(default_factory=lambda: list(DEPARTMENTS))
    settle_seconds: float = Field(default=2.0, ge=0, description="a file must be unchanged this long before it is taken")
    arrival_wait_seconds: float = Field(
        default=60.0, ge=0,
        description="a file that does not look complete for its format (and did not arrive by rename) must be unchanged this long",
    )
    arrival: dict[str, Literal["settle", "rename", "manifest"]] = Field(
        default_factory=dict,
        description="[arrival] DEPARTMENT = rule: `rename` takes a file renamed from NAME.part at once; "
        "`manifest` takes NAME only with NAME.sha256 beside it, once its bytes match",
    )
    poll_seconds: float = Field(default=10.0, gt=0, description="how often `gateway run` polls the inboxes")
    console_language: Literal["zh", "en"] = Field(
        default="zh", description="the console's language (控制台语言) unless a user chooses the other: zh Simplified Chinese, en English"
    )
    batch_size: int = Field(default=2000, ge=1, description="records inserted per statement")
    # One large file on several cores (gateway/exchange/parallel.py, docs/performance.md).
    ingest_workers: int = Field(
        default_factory=lambda: 2 if (os.cpu_count() or 1) > 1 else 0, ge=0, le=64,
        description="parsing processes that validate a large file while the gateway process stores it; 0: all in one process",
    )
    parallel_parse_min_bytes: int = Field(
        default=4_000_000, ge=0, description="files at least this large go to the parsing processes; smaller ones are parsed in-process"
    )
    validate_before_lock_max_bytes: int = Field(
        default=2_000_000, ge=0,
        description="on SQLite, files up to this size are parsed and validated before the exchange takes the database's "
        "one write lock, so that several workers overlap; their validated rows are held in memory meanwhile (0: never)",
    )
    claim_timeout_seconds: float = Field(
        default=60.0, gt=0, description="a claimed file whose worker is silent this long is taken over"
    )
    claim_heartbeat_seconds: float = Field(default=10.0, gt=0, description="how often a worker renews its claim")
    database_retry_max_seconds: float = Field(
        default=30.0, gt=0, description="longest wait between tries while the database is away, read-only or full"
    )
    max_attempts: int = Field(default=3, ge=1, description="a file that crashes processing this often is rejected")
    signature_wait_seconds: float = Field(
        default=3600.0, ge=0, description="how long a drop of a department with a registered key waits for its NAME.asc"
    )
    key_passphrase: SecretStr | None = Field(default=None, description="from GATEWAY_KEY_PASSPHRASE only")
    adapters: dict[str, dict[str, Any]] = Field(default_factory=dict, description="[adapters.NAME] options")
    # Scheduled pulls, leases and deadlines (docs/pulls.md).
    pulls: dict[str, PullSource] = Field(default_factory=dict, description="[pulls.NAME] partner APIs pulled on a schedule")
    deadlines: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="[deadlines.RULE] overrides of the regulations' deadlines (gateway/obligations/deadlines.py)"
    )
    obligations: dict[str, Any] = Field(
        default_factory=dict, description="[obligations] kinds, submission schedules (gateway/obligations/service.py, docs/obligations.md)"
    )
    job_lease_seconds: float = Field(
        default=120.0, ge=5, description="a scheduled job's lease; renewed while it runs, taken over once expired"
    )
    sftp: dict[str, SftpServer] = Field(
        default_factory=dict, description="[sftp.NAME] servers; departments on none use the local mailbox"
    )
    mail: MailBox | None = Field(default=None, description="[mail] the population office's mailbox (docs/deploy/mail.md)")
    # Routing under the sharing agreements (gateway/routing/, docs/routing.md).
    agreements_file: str = Field(
        default="", description="a TOML file of [[agreements]] tables, relative to the home; empty: none"
    )
    agreements: list[dict[str, Any]] = Field(
        default_factory=list, description="[[agreements]] tables written in gateway.toml itself"
    )
    require_signed_acks: bool = Field(
        default=False, description="refuse an ACK-<delivery id>.json without a good ACK-<id>.json.asc by the recipient's key"
    )
    # Reconciliation of departments' records (gateway/reconcile/, docs/reconciliation.md).
    reconciliation: dict[str, Any] = Field(
        default_factory=dict, description="[reconciliation] options: [reconciliation.grace] per rule, the daily job's time"
    )
    # Population reports and the monthly early warning (gateway/population_reports/, docs/reports.md).
    population_reports: dict[str, Any] = Field(
        default_factory=dict, description="[population_reports] options (gateway/population_reports/settings.py)"
    )
    # The population register and 育龄妇女信息库 (gateway/register/, docs/register.md).
    population_register: dict[str, Any] = Field(
        default_factory=dict, description="[population_register] options: [population_register.authority] per attribute, ages (gateway/register/settings.py)"
    )
    retention: dict[str, Any] = Field(
        default_factory=dict,
        description="[retention] keep period per contract (\"10y\", \"18m\", \"400d\"), rejected_files, row_errors; "
        "no rule: nothing is deleted (gateway/retention/rules.py)",
    )

    @field_validator("departments")
    @classmethod
    def _department_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not name or not all(ch.islower() or ch.isdigit() or ch == "-" for ch in name):
                raise ValueError(f"department name {name!r} must be lowercase letters, digits and dashes")
        return names

    @model_validator(mode="after")
    def _sftp_departments(self) -> Settings:
        served: dict[str, str] = {}
        for name, server in self.sftp.items():
            if not name or not all(ch.islower() or ch.isdigit() or ch in "-_" for ch in name):
                raise ValueError(f"[sftp.{name}]: a server name must be lowercase letters, digits, dashes and underscores")
            for department in server.departments:
                if department not in self.departments:
                    raise ValueError(f"[sftp.{name}] lists department {department!r}, which is not in `departments`")
                if department in served:
                    raise ValueError(f"department {department!r} is listed under both [sftp.{served[department]}] and [sftp.{name}]")
                served[department] = name
        if self.mail is not None:
            for address, department in self.mail.senders.items():
                if department not in self.departments:
                    raise ValueError(
                        f"[mail.senders] {address}: 部门 {department!r} 不在 departments 中 / department {department!r} is not in `departments`"
                    )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first: a variable overrides what gateway.toml (passed as init) says.
        return (env_settings, init_settings)

    @property
    def mailbox_root(self) -> Path:
        return self.mailbox if self.mailbox.is_absolute() else self.home / self.mailbox

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'gateway.db').resolve()}"

    @property
    def staging_dir(self) -> Path:
        return self.home / "staging"

    @property
    def gnupg_dir(self) -> Path:
        return self.home / "gnupg"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    def passphrase(self) -> str | None:
        return self.key_passphrase.get_secret_value() if self.key_passphrase else None


def pull_token_variable(name: str, source: PullSource | dict[str, Any] | None = None) -> str:
    """The variable holding pull source NAME's bearer token: its `token_env`, else
    `GATEWAY_PULL_<NAME>_TOKEN`."""
    named = source.get("token_env") if isinstance(source, dict) else (source.token_env if source else None)
    return str(named or f"GATEWAY_PULL_{name.upper().replace('-', '_')}_TOKEN")


def load_settings(home: Path | None = None) -> Settings:
    home = (home or default_home()).resolve()
    data: dict[str, Any] = {}
    config_path = home / CONFIG_FILE
    if config_path.exists():
        try:
            data = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path} is not valid TOML: {exc}") from exc
        if "key_passphrase" in data:
            raise ConfigError(f"{config_path}: never store key_passphrase in a file; set GATEWAY_KEY_PASSPHRASE")
        for name, table in (data.get("sftp") or {}).items():
            if isinstance(table, dict) and "passphrase" in table:
                variable = f"GATEWAY_SFTP_{str(name).upper().replace('-', '_')}_PASSPHRASE"
                raise ConfigError(f"{config_path}: never store [sftp.{name}] passphrase in a file; set {variable}")
        for name, table in (data.get("pulls") or {}).items():
            if isinstance(table, dict) and "token" in table:
                raise ConfigError(f"{config_path}: never store [pulls.{name}] token in a file; set {pull_token_variable(str(name), table)}")
        mail_table = data.get("mail")
        if isinstance(mail_table, dict) and ({"password", "smtp_password"} & set(mail_table)):
            raise ConfigError(f"{config_path}: 密码不得写入文件 / never store [mail] passwords in a file; set {mail_table.get('password_env') or 'GATEWAY_MAIL_PASSWORD'}")
    data["home"] = home
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = "; ".join(
            (f"{'.'.join(map(str, e['loc']))}: " if e["loc"] else "") + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise ConfigError(f"{config_path}: {problems}") from exc


DEFAULT_TOML = """\
# Interagency data-exchange gateway settings. Every key can be overridden by an
# environment variable GATEWAY_<KEY> (for example GATEWAY_SETTLE_SECONDS=5).
# The signing key's passphrase is never stored here: set GATEWAY_KEY_PASSPHRASE.

# SQLAlchemy URL; empty means SQLite in WAL mode at HOME/gateway.db.
database_url = ""

# Local mailbox root (relative to the home): one tree per department.
mailbox = "mailbox"

departments = {departments}

# A file is taken only once seen unchanged across polls this many seconds apart; one
# that does not look complete for its format (a CSV whose last line has no line end, XML
# not closed, a zip without its central directory) and did not arrive by rename from
# NAME.part must stay unchanged for arrival_wait_seconds (docs/operations.md).
settle_seconds = 2.0
arrival_wait_seconds = 60.0

# How often `gateway run` polls the inboxes.
poll_seconds = 10.0

# Sharing agreements: who receives which records and fields (docs/routing.md).
# `gateway agreements check` validates them; `gateway agreements explain DEPARTMENT`
# shows what a department receives. Empty: nothing is routed.
agreements_file = "agreements.toml"

# Demand that recipients sign their ACK-<delivery id>.json (ACK-<id>.json.asc beside it).
require_signed_acks = false

# Partner APIs pulled on a schedule by `gateway run` (docs/pulls.md). The bearer token
# comes from GATEWAY_PULL_<NAME>_TOKEN, never from this file. `gateway jobs` shows them.
# [pulls.housing]
# kind = "housing"                 # occupancy-changes pages (JSON), department housing
# url = "https://fg.example.gov.cn"
# every = "15m"
# [pulls.platform]
# kind = "platform"                # the national platform's JHXX inbox (XML), department national-platform
# url = "https://ldrk.example.gov.cn"
# every = "1h"                     # or: at = ["08:00", "14:00"] (China time)
# Retries: retries = 5, backoff = 2.0, backoff_jitter = 1.0, retry_after_max = 600,
# connect_timeout = 10.0, read_timeout = 60.0.

# Deadlines (gateway/obligations/deadlines.py); the regulations' defaults, e.g.
# [deadlines.assist_check_urgent]
# days = 15
# count = "calendar"               # or "working" (chinesecalendar, adjusted workdays included)
# start = "sent"                   # FQSJ, or "received"
# roll_to_workday = false          # the platform's rules; every other rule rolls (民法典 §203)
# A new rule: [deadlines.reply_letter] days = 10, count = "calendar".

# Obligations (docs/obligations.md): what each party owes by when, the rates, the Friday reminder.
# [obligations]
# submissions_from = "2026-10"     # first statistical month tracked
# remind = true                    # Fridays from 09:00 China time
# [obligations.kinds]
# reply-letter = "reply_letter"    # a kind of your own, on a rule of your own
# [[obligations.submissions]]      # replaces the regulations' schedules (police, civil-affairs, hospital)
# department = "police"
# what = "births"
# every = "monthly"                # quarterly | half-year | annual
# contracts = ["BirthEvent"]

# Reconciliation between departments' records (docs/reconciliation.md): grace periods
# per rule (defaults from the regulations) and the daily job, China time.
# [reconciliation]
# at = ["07:00"]                   # [] disables the daily job
# deliver = true                   # the daily job sends each department its open list
# [reconciliation.grace]
# unregistered-births = "1 month"
# deaths-without-cremation = "15 days"

# Retention (保存期限, docs/operations.md "Retention"): how long each contract's records are
# kept, from their receipt time; no rule, nothing is ever deleted. y years, m months, d days.
# [retention]
# BirthEvent = "10y"
# rejected_files = "2y"            # archived files of wholly refused drops
# row_errors = "2y"                # row errors of every exchange

# Options per adapter, e.g.
# [adapters.hospital-births]

# The population office's mailbox (固定电子信箱, docs/deploy/mail.md): attachments from the
# registered senders are processed like drops; replies by SMTP. The password comes from
# the variable password_env names (default GATEWAY_MAIL_PASSWORD), never from this file.
# [mail]
# imap_host = "mail.example.gov.cn"
# security = "imaps"               # or "starttls"
# ca_file = "mail-ca.pem"          # or cert_sha256 = "AB:CD:..." (the server certificate pinned)
# user = "renkou@example.gov.cn"
# smtp_port = 587
# [mail.senders]
# "births@hospital.example.gov.cn" = "hospital"

# Departments whose mailbox is on an SFTP server (docs/deploy/sftp.md); the others use
# the local mailbox. The key's passphrase comes from GATEWAY_SFTP_COUNTY_PASSPHRASE.
# [sftp.county]
# host = "sftp.example.gov.cn"
# port = 22
# username = "gwgateway"
# key_file = "sftp/id_ed25519"
# known_hosts = "known_hosts"
# root = "/"
# departments = ["hospital", "police"]
# connect_timeout = 15.0
"""


def default_toml() -> str:
    listed = "[" + ", ".join(f'"{name}"' for name in DEPARTMENTS) + "]"
    return DEFAULT_TOML.format(departments=listed)


class NamedAdapter(Protocol):
    """What the department list needs of an installed adapter (`AdapterInfo` has it)."""

    @property
    def name(self) -> str: ...

    @property
    def department(self) -> str: ...


def effective_departments(settings: Settings, adapters: Iterable[NamedAdapter]) -> list[str]:
    """The departments the gateway serves (实际部门): `departments` of gateway.toml, in its
    order, then every department an installed adapter reads that the list does not name
    (sorted). `Settings.departments` stays the configured list; polling, `init` and the
    recipients a clerk may name use this one, so installing a plugin is enough for its
    department's files to be read."""
    return served_departments(settings, (adapter.department for adapter in adapters))


def served_departments(settings: Settings, adapter_departments: Iterable[str]) -> list[str]:
    """`effective_departments` from the departments the installed adapters read."""
    configured = list(settings.departments)
    return configured + sorted(set(adapter_departments) - set(configured))
