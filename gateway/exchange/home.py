"""`gateway init`: the gateway home, its settings, database, mailbox and signing key."""

from __future__ import annotations

import os
from pathlib import Path

from gateway.config import CONFIG_FILE, Settings, default_toml, load_settings
from gateway.receipts.signing import HISTORY_FILE, Signer
from gateway.routing.agreements import write_default_agreements
from gateway.store import create_schema, make_engine
from gateway.intake.transports import LocalMailbox


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
