"""Settings: `gateway.toml` in the gateway home, overridden by `GATEWAY_*` variables.

The home is `--home`, else `GATEWAY_HOME`, else `./gateway-home`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .errors import ConfigError

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


class Settings(BaseSettings):
    """Everything an operator can set. Each key can be overridden by `GATEWAY_<KEY>`."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="forbid")

    home: Path
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite at HOME/gateway.db")
    mailbox: Path = Field(default=Path("mailbox"), description="local mailbox root, relative to the home")
    departments: list[str] = Field(default_factory=lambda: list(DEPARTMENTS))
    settle_seconds: float = Field(default=2.0, ge=0, description="a file must be unchanged this long before it is taken")
    poll_seconds: float = Field(default=10.0, gt=0, description="how often `gateway run` polls the inboxes")
    batch_size: int = Field(default=2000, ge=1, description="records inserted per statement")
    max_attempts: int = Field(default=3, ge=1, description="a file that crashes processing this often is rejected")
    signature_wait_seconds: float = Field(
        default=3600.0, ge=0, description="how long a drop of a department with a registered key waits for its NAME.asc"
    )
    key_passphrase: SecretStr | None = Field(default=None, description="from GATEWAY_KEY_PASSPHRASE only")
    adapters: dict[str, dict[str, Any]] = Field(default_factory=dict, description="[adapters.NAME] options")
    sftp: dict[str, SftpServer] = Field(
        default_factory=dict, description="[sftp.NAME] servers; departments on none use the local mailbox"
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

# A file is taken only once unchanged for this many seconds.
settle_seconds = 2.0

# How often `gateway run` polls the inboxes.
poll_seconds = 10.0

# Options per adapter, e.g.
# [adapters.hospital-births]

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
