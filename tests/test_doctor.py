"""`gateway doctor` on real homes (made by `gateway init`), on either database: a clean
home passes; each fault is named with its fix, and one that stops the gateway exits 1."""

from __future__ import annotations

import datetime as dt
import socket

from conftest import drop, run_gateway, specimen

from gateway.config import load_settings
from gateway.exchange.doctor import ERROR, WARNING, examine


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe closes


def test_a_clean_home_passes(tmp_path):
    home = tmp_path / "home"
    run_gateway(home, "init")
    done = run_gateway(home, "doctor")
    assert "检查通过" in done.stdout and "the home passed" in done.stdout, done.stdout
    assert "错误 ERROR" not in done.stdout
    assert "database 数据库" in done.stdout and "clock 时钟" in done.stdout  # the checks that passed are said


def migrated(home) -> None:
    """The suite's homes are copies of one `gateway init` home without its database: make it."""
    run_gateway(home, "db", "upgrade")


def test_a_keyring_others_can_read_is_an_error(home):
    migrated(home)
    [key] = (home / "gnupg" / "private-keys-v1.d").glob("*.key")
    key.chmod(0o644)
    found = run_gateway(home, "doctor", check=False)
    assert found.returncode == 1, found.stdout
    assert "错误 ERROR [permissions] 私钥环可被其他用户读取" in found.stdout and key.name in found.stdout
    assert f"chmod -R go-rwx {home / 'gnupg'}" in found.stdout
    key.chmod(0o600)
    assert run_gateway(home, "doctor").returncode == 0


def test_a_database_behind_the_head_is_named(home, settings):
    migrated(home)
    from alembic import command

    from gateway.store import make_engine
    from gateway.store.migrate import alembic_config, head_revision

    engine = make_engine(settings.db_url)
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "-1")
    finally:
        engine.dispose()
    found = run_gateway(home, "doctor", check=False)
    assert found.returncode == 1
    assert "[database]" in found.stdout and f"this gateway needs {head_revision()}" in found.stdout
    assert "gateway db upgrade" in found.stdout
    run_gateway(home, "db", "upgrade")
    assert run_gateway(home, "doctor").returncode == 0


def test_an_unpinned_unreachable_sftp_host_is_named(home):
    migrated(home)
    port = closed_port()
    with open(home / "gateway.toml", "a", encoding="utf-8") as config:
        config.write(f'\n[sftp.county]\nhost = "127.0.0.1"\nport = {port}\nusername = "gw"\nkey_file = "sftp_key"\ndepartments = ["hospital"]\n')
    found = run_gateway(home, "doctor", check=False)
    assert found.returncode == 1
    assert f"错误 ERROR [sftp] SFTP 服务器 county([127.0.0.1]:{port})的主机密钥未登记" in found.stdout
    assert "gateway sftp pin county" in found.stdout
    assert f"警告 WARNING [sftp] SFTP 服务器 county([127.0.0.1]:{port})现在无法连接" in found.stdout


def test_the_clock_behind_the_ledger_and_a_full_disk_are_named(home, settings, gateway):
    drop(settings, "police", "police_hukou_202610.csv", specimen("police_hukou_202610.csv"))
    assert gateway.run_once()  # a receipt, and the checkpoint over it
    settings = load_settings(home)
    now = dt.datetime.now(dt.UTC)
    assert not [f for f in examine(settings, now=now).findings if f.check == "clock"]
    [skew] = [f for f in examine(settings, now=now - dt.timedelta(hours=1)).findings if f.check == "clock"]
    assert skew.level == ERROR and "本机时钟" in skew.what and "timedatectl" in skew.fix
    [disk] = [f for f in examine(settings, min_free_bytes=1 << 60).findings if f.check == "disk"]
    assert disk.level == WARNING and "MiB free" in disk.what


def test_a_pinned_reachable_sftp_host_passes_and_a_changed_key_is_an_error(home, sshd, monkeypatch):
    from test_sftp import configure, pin

    migrated(home)
    configure(home, sshd.gateway_toml("county", ["hospital"]))
    pin(home, sshd)
    report = examine(load_settings(home))
    assert not [f for f in report.findings if f.check == "sftp"] and "sftp 服务器" in report.passed
    # Another key pinned for that server (a server replaced, or someone in between): named, an error.
    pinned = (home / "known_hosts").read_text().split()
    other = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    (home / "known_hosts").write_text(f"{pinned[0]} ssh-ed25519 {other}\n")
    [changed] = [f for f in examine(load_settings(home)).findings if f.check == "sftp"]
    assert changed.level == ERROR and "not the one pinned" in changed.what
