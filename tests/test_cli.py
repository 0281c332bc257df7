"""The `gateway` command as an operator uses it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time

import pytest

from gateway.config import load_settings
from gateway.errors import ConfigError

from conftest import REPO, drop, run_gateway, specimen

SPECIMEN = "hospital_births_202610.csv"
GATEWAY = str(REPO / ".venv" / "bin" / "gateway")


def test_init_is_idempotent_and_keeps_the_key(tmp_path):
    home = tmp_path / "h"
    first = subprocess.run([GATEWAY, "init", "--home", str(home)], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert first.returncode == 0, first.stderr
    fingerprint = next(line.split()[2] for line in first.stdout.splitlines() if line.startswith("Signing key"))
    for department in ("police", "hospital", "civil-affairs", "school", "housing", "national-platform", "population-office"):
        for folder in ("inbox", "outbox", "processed", "rejected"):
            assert (home / "mailbox" / department / folder).is_dir()
    assert oct((home / "gnupg").stat().st_mode & 0o777) == "0o700"
    again = subprocess.run([GATEWAY, "init", "--home", str(home)], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert f"Signing key:  {fingerprint} (existing)" in again.stdout
    subprocess.run(["gpgconf", "--homedir", str(home / "gnupg"), "--kill", "gpg-agent"], capture_output=True)


def test_run_once_prints_a_summary_and_exchanges_show_masks(home, settings):
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    result = run_gateway(home, "run", "--once", env={"GATEWAY_SETTLE_SECONDS": "0"})
    from gateway.masking import mask_file_name

    assert "processed" in result.stdout and mask_file_name(SPECIMEN) in result.stdout  # file names masked (issue 14)
    listing = run_gateway(home, "exchanges", "list")
    assert "hospital-births" in listing.stdout
    shown = run_gateway(home, "exchanges", "show", "1")
    assert "440781***********0" in shown.stdout and "id_check_char" not in shown.stdout
    assert "440781198802140660" not in shown.stdout
    assert "accepted 3, rejected 3" in shown.stdout
    missing = run_gateway(home, "exchanges", "show", "99", check=False)
    assert missing.returncode == 1 and "No exchange 99" in missing.stdout


def test_run_keeps_polling_and_stops_cleanly_on_ctrl_c(home, settings):
    env = {**os.environ, "GATEWAY_SETTLE_SECONDS": "0", "GATEWAY_POLL_SECONDS": "0.5", "COLUMNS": "200"}
    process = subprocess.Popen([GATEWAY, "run", "--home", str(home)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(1.5)
        drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
        processed = settings.mailbox_root / "hospital" / "processed" / SPECIMEN
        deadline = time.monotonic() + 30
        while not processed.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processed.exists(), "the polling gateway did not take the drop"
        drop(settings, "hospital", "second.csv", specimen(SPECIMEN).replace(b"Q4407812600", b"Q4407812611"))
        second = settings.mailbox_root / "hospital" / "processed" / "second.csv"
        while not second.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert second.exists(), "the gateway stopped polling after the first file"
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Stopped." in out
    assert "Traceback" not in err


def test_ingest_by_hand_leaves_the_file_and_delivers_the_receipt(home, tmp_path):
    source = tmp_path / "births.csv"
    source.write_bytes(specimen(SPECIMEN))
    result = run_gateway(home, "ingest", str(source), "--adapter", "hospital-births")
    assert "processed" in result.stdout
    assert source.exists()
    assert (home / "mailbox" / "hospital" / "outbox" / "births.csv.receipt.json").exists()
    unknown = run_gateway(home, "ingest", str(source), "--adapter", "nope", check=False)
    assert unknown.returncode == 2 and "Valid choices" in unknown.stderr and "hospital-births" in unknown.stderr


def test_commands_on_a_missing_home_say_how_to_fix_it(tmp_path):
    result = subprocess.run([GATEWAY, "run", "--once", "--home", str(tmp_path / "none")], capture_output=True, text=True)
    assert result.returncode == 2
    assert "gateway init" in result.stderr


def test_demo_runs_end_to_end(tmp_path):
    result = subprocess.run([GATEWAY, "demo", "--home", str(tmp_path / "demo")], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("GENUINE") == 7 and "NOT GENUINE" not in result.stdout
    assert "duplicate" in result.stdout
    subprocess.run(["gpgconf", "--homedir", str(tmp_path / "demo" / "gnupg"), "--kill", "gpg-agent"], capture_output=True)


def test_logs_never_carry_a_full_id_number_or_name(gateway, settings, caplog):
    caplog.set_level(logging.DEBUG)
    drop(settings, "hospital", SPECIMEN, specimen(SPECIMEN))
    gateway.run_once()
    text = caplog.text
    assert "exchange 1" in text
    for secret in ("440781198802140660", "440781199203154325", "陈小明", "黄敏"):
        assert secret not in text


def test_environment_overrides_the_settings_file(home, monkeypatch):
    (home / "gateway.toml").write_text('settle_seconds = 7\npoll_seconds = 3\n', encoding="utf-8")
    assert load_settings(home).settle_seconds == 7
    monkeypatch.setenv("GATEWAY_SETTLE_SECONDS", "1.5")
    settings = load_settings(home)
    assert settings.settle_seconds == 1.5 and settings.poll_seconds == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('key_passphrase = "secret"\n', "GATEWAY_KEY_PASSPHRASE"),
        ("settle_seconds = [\n", "not valid TOML"),
        ('no_such_setting = 1\n', "no_such_setting"),
        ('departments = ["Hospital"]\n', "lowercase"),
    ],
)
def test_bad_settings_are_clear_errors(home, text, message):
    (home / "gateway.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_settings(home)
