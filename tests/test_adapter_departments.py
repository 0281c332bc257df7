"""Departments come from gateway.toml and from installed adapters (issue 19): an adapter's
department that `departments` omits still gets its mailbox, said once, and is polled; a
mailbox folder nobody reads is warned about."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess

from conftest import REPO, drop, query, run_gateway, specimen
from gateway.config import load_settings
from gateway.config import effective_departments
from gateway.exchange.home import unread_inbox_folders
from gateway.exchange.lifecycle import Gateway
from gateway.plugins import get_manager


def _without_hospital(home) -> None:
    """gateway.toml's departments without `hospital`, and no hospital mailbox."""
    config = home / "gateway.toml"
    text = config.read_text(encoding="utf-8")
    line = next(l for l in text.splitlines() if l.startswith("departments = "))
    config.write_text(text.replace(line, line.replace('"hospital", ', "")), encoding="utf-8")
    shutil.rmtree(home / "mailbox" / "hospital")


def test_effective_departments_add_the_adapters_departments_after_the_configured(home):
    _without_hospital(home)
    settings = load_settings(home)
    assert "hospital" not in settings.departments
    departments = effective_departments(settings, get_manager().adapters().values())
    assert departments[: len(settings.departments)] == settings.departments
    assert departments[len(settings.departments):] == ["hospital"]
    assert settings.departments == load_settings(home).departments  # the configured list is unchanged


def test_an_unlisted_adapter_department_gets_its_inbox_once_and_is_polled(home, monkeypatch, caplog):
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "0")
    _without_hospital(home)
    settings = load_settings(home)
    gateway = Gateway(settings)
    try:
        with caplog.at_level(logging.WARNING):
            assert gateway.run_once() == []
            gateway.run_once()
        said = [r.getMessage() for r in caplog.records if "已为适配器" in r.getMessage()]
        assert len(said) == 1, said
        assert said[0].startswith("已为适配器 hospital-births 的部门 hospital 建立收件箱")
        for folder in ("inbox", "outbox", "processed", "rejected"):
            assert (settings.mailbox_root / "hospital" / folder).is_dir()
        drop(settings, "hospital", "births.csv", specimen("hospital_births_202610.csv"))
        [outcome] = gateway.run_once()
    finally:
        gateway.close()
    assert (outcome.department, outcome.status, outcome.accepted) == ("hospital", "processed", 3)
    assert query(settings, "SELECT department FROM exchange") == [("hospital",)]


def test_init_and_run_say_so_and_run_warns_about_a_folder_nobody_reads(home):
    _without_hospital(home)
    init = run_gateway(home, "init")
    assert re.search(r"已为适配器 hospital-births 的部门 hospital 建立收件箱 \S+mailbox/hospital/inbox", init.stdout.replace("\n", ""))
    assert (home / "mailbox" / "hospital" / "inbox").is_dir()
    assert "已为适配器" not in run_gateway(home, "init").stdout  # said once: when it is made

    (home / "mailbox" / "water-board" / "inbox").mkdir(parents=True)
    settings = load_settings(home)
    assert unread_inbox_folders(settings, get_manager().adapters().values()) == ["water-board"]
    ran = run_gateway(home, "run", "--once", env={"GATEWAY_SETTLE_SECONDS": "0"})
    output = ran.stdout.replace("\n", "")
    assert "water-board" in output and "没有已安装的适配器读取" in output
    assert "已为适配器" not in output  # the inbox exists already


def test_the_console_and_accounts_know_an_adapter_department(home):
    from gateway.web.data import served_departments

    _without_hospital(home)
    assert served_departments(load_settings(home))[-1] == "hospital"
    run_gateway(home, "init")
    added = subprocess.run(
        [str(REPO / ".venv" / "bin" / "gateway"), "users", "add", "clerk-h", "--role", "department", "--department", "hospital",
         "--password-stdin", "--home", str(home)],
        input="a long enough passphrase 42\n", capture_output=True, text=True, timeout=120,
    )
    assert added.returncode == 0 and "sees hospital only" in added.stdout, added.stderr


def test_an_unlisted_adapter_department_may_receive_under_an_agreement(home):
    """A department known from an installed adapter only is a recipient an agreement may name."""
    from gateway.routing.agreements import load_agreements

    _without_hospital(home)
    (home / "agreements.toml").write_text(
        '[[agreements]]\nname = "deaths-to-hospital"\nrecipient = "hospital"\ncontracts = ["DeathEvent"]\n'
        'fields = ["death_date"]\npurpose = "close the hospital\'s open cases"\n', encoding="utf-8")
    checked = load_agreements(load_settings(home))
    assert [a.agreement.name for a in checked.agreements] == ["deaths-to-hospital"], checked.problems
    (home / "agreements.toml").write_text(
        '[[agreements]]\nname = "deaths-to-nobody"\nrecipient = "water-board"\ncontracts = ["DeathEvent"]\n'
        'fields = ["death_date"]\npurpose = "x"\n', encoding="utf-8")
    refused = load_agreements(load_settings(home))
    assert not refused.agreements and "hospital" in " ".join(p.message for p in refused.problems)
