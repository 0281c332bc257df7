"""`gateway init`: the gateway home, its settings, database, mailbox and signing key."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from gateway.config import CONFIG_FILE, NamedAdapter, Settings, default_toml, effective_departments, load_settings
from gateway.intake.transports.base import FOLDERS, Transport
from gateway.receipts.signing import HISTORY_FILE, Signer
from gateway.routing.agreements import write_default_agreements
from gateway.store import create_schema, make_engine
from gateway.intake.transports import LocalMailbox


class TransportFor(Protocol):
    """`Gateway.transport_for`: the mailbox of one department."""

    def __call__(self, department: str) -> Transport: ...


def unconfigured_adapter_departments(settings: Settings, adapters: Iterable[NamedAdapter]) -> dict[str, list[str]]:
    """Department -> the installed adapters reading it, for the departments that
    `departments` in gateway.toml does not list."""
    found: dict[str, list[str]] = {}
    for adapter in adapters:
        if adapter.department not in settings.departments:
            found.setdefault(adapter.department, []).append(adapter.name)
    return {department: sorted(names) for department, names in sorted(found.items())}


def adapter_inbox_message(department: str, adapters: list[str], inbox: object) -> str:
    """What is said (once: when the inbox is made) of an adapter's department's mailbox."""
    names = ", ".join(adapters)
    return (
        f"已为适配器 {names} 的部门 {department} 建立收件箱 {inbox}(gateway.toml 的 departments 未列出该部门;"
        f"可将其加入 departments) / made the inbox of department {department} for adapter {names} at {inbox} "
        "(departments in gateway.toml does not list it; add it there)"
    )


def ensure_adapter_mailboxes(
    settings: Settings, adapters: Iterable[NamedAdapter], transport_for: TransportFor
) -> list[str]:
    """Make the mailbox of every installed adapter's department that gateway.toml does not
    list; return one message per mailbox made (an existing one is said nothing about)."""
    said = []
    for department, names in unconfigured_adapter_departments(settings, adapters).items():
        transport = transport_for(department)
        if all(transport.exists(department, folder, "") for folder in FOLDERS):
            continue
        transport.ensure_tree(department)
        said.append(adapter_inbox_message(department, names, settings.mailbox_root / department / "inbox"))
    return said


def unread_inbox_folders(settings: Settings, adapters: Iterable[NamedAdapter]) -> list[str]:
    """Folders under the local mailbox root that no one polls: neither listed in
    `departments` nor read by an installed adapter (a file dropped there waits forever)."""
    served = set(effective_departments(settings, adapters))
    try:
        entries = sorted(entry.name for entry in os.scandir(settings.mailbox_root) if entry.is_dir())
    except FileNotFoundError:
        return []
    return [name for name in entries if name not in served and not name.startswith(".")]


def unread_inbox_message(folder: str, path: object) -> str:
    return (
        f"收件箱目录 {path} 没有已安装的适配器读取,部门 {folder} 也不在 gateway.toml 的 departments 中:"
        f"投递到这里的文件不会被处理 / the mailbox folder {path} is read by no installed adapter and {folder} is "
        "not in departments of gateway.toml: files dropped there are never processed"
    )


def init_home(home: Path) -> tuple[Settings, str, bool]:
    """Create (or complete) a gateway home; return its settings, key fingerprint, and
    whether a new key was made. Running it again changes nothing that exists."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / CONFIG_FILE
    if not config.exists():
        config.write_text(default_toml(), encoding="utf-8")
    write_default_agreements(home)  # the county's sharing agreements (gateway/routing/agreements.py)
    settings = load_settings(home)
    for path in (settings.staging_dir, settings.keys_dir):
        path.mkdir(parents=True, exist_ok=True)
    settings.gnupg_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(settings.gnupg_dir, 0o700)
    mailbox = LocalMailbox(settings.mailbox_root)
    for department in settings.departments:
        mailbox.ensure_tree(department)
    engine = make_engine(settings.db_url)
    create_schema(engine)
    engine.dispose()
    signer = Signer(settings.gnupg_dir, settings.keys_dir, settings.passphrase())
    created = False
    try:
        if (settings.keys_dir / HISTORY_FILE).exists():
            fingerprint = signer.fingerprint
        else:
            fingerprint = signer.create_key()
            created = True
    finally:
        signer.close()
    return settings, fingerprint, created
