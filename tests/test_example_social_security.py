"""The social-security bureau (社保局) example plugin, end to end, exactly as docs/plugins.md
walks through it: the page's shell block ("A seventh source, end to end") runs word for
word, in a copy of the project with nothing beside it, under `bash -e`. It makes a virtual
environment, installs the gateway and the plugin, scaffolds an XLSX adapter, runs the
plugin's own kit tests, drops the police's file and the bureau's workbook, adds an
agreement, applies it to the past month twice, decrypts the police's delivery with plain
gpg and runs the reconciliation. The tests below then check what the walk-through made."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

# it runs the walk-through in a venv and a home of its own (SQLite, GATEWAY_* cleared): once, not per backend
pytestmark = [pytest.mark.slow, pytest.mark.backend_independent]

SECTION = "## A seventh source, end to end"
_LEFT_OUT = shutil.ignore_patterns(".git", ".venv", ".mypy_cache", "__pycache__", "*.egg-info", "test-artifacts",
                                   "demo-home", "gateway-home", "ss-home", "ss-venv")


def walk_through() -> str:
    """The shell block of the walk-through in docs/plugins.md."""
    text = (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")
    section = text[text.index(SECTION):]
    start = section.index("```\n") + len("```\n")
    return section[start:section.index("\n```", start)]


class Walked:
    def __init__(self, root: Path, output: str) -> None:
        self.root, self.output = root, output
        self.home = root / "ss-home"

    def gateway(self, *args: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        result = subprocess.run(
            [str(self.root / "ss-venv" / "bin" / "gateway"), *args], capture_output=True, text=True, timeout=300,
            env={**env, "COLUMNS": "200", "GATEWAY_HOME": str(self.home)},
        )
        assert result.returncode == 0, f"gateway {' '.join(args)}: {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result.stdout


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> Walked:
    root = tmp_path_factory.mktemp("clone") / "gateway"
    shutil.copytree(REPO, root, ignore=_LEFT_OUT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") and k != "VIRTUAL_ENV"}
    # `python3` of the walk-through is the machine's (as for scripts/bootstrap), not the project's .venv
    env["PATH"] = os.pathsep.join(part for part in env.get("PATH", "").split(os.pathsep) if ".venv" not in part)
    env["COLUMNS"] = "200"
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walk_through()], cwd=root, env=env, capture_output=True, text=True,
        timeout=1800,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    try:
        yield Walked(root, output)
    finally:
        subprocess.run(["gpgconf", "--homedir", str(root / "police-keyring"), "--kill", "gpg-agent"], capture_output=True)


def test_the_scaffold_and_the_plugins_own_kit_tests_pass(walked: Walked) -> None:
    assert (walked.root / "scaffold" / "gateway-social-security" / "tests" / "samples").is_dir()
    assert re.search(r"\b12 passed\b", walked.output), walked.output[-3000:]
    listed = walked.gateway("contracts", "list")
    assert "PensionDeathReport" in listed and "养老金领取人员死亡报告" in listed and "gateway-social-security" in listed
    shown = walked.gateway("contracts", "show", "PensionDeathReport")
    phone = next(line for line in shown.splitlines() if "reporter_phone" in line)
    assert "phone" in phone and re.search(r"\b1\d\d\*{4}\d{4}\b", phone), phone  # 3 digits kept, 4 starred, 4 kept


def test_the_bureaus_mailbox_comes_from_the_adapter_and_its_workbook_is_receipted(walked: Walked) -> None:
    assert "已为适配器 social-security-deaths 的部门 social-security 建立收件箱" in walked.output
    outbox = walked.home / "mailbox" / "social-security" / "outbox"
    receipt = outbox / "pension_deaths_202610.xlsx.receipt.json"
    body = json.loads(receipt.read_text(encoding="utf-8"))
    assert (body["counts"]["accepted"], body["counts"]["rejected"]) == (3, 3)
    assert "GENUINE" in walked.gateway("receipts", "verify", str(receipt))
    report = list(csv.reader(io.StringIO((outbox / "pension_deaths_202610.xlsx.errors.csv").read_text(encoding="utf-8-sig"))))
    found = {(row[0], row[1], row[-1]): row[4] for row in report[1:]}
    assert found == {
        ("6", "养老保险个人编号", "pension_no_missing"): "缺少养老保险个人编号",
        ("7", "报告人联系电话", "phone_format"): found[("7", "报告人联系电话", "phone_format")],
        ("8", "报告日期", "report_before_death"): "报告日期早于死亡日期",
    }
    text = "\n".join(",".join(row) for row in report)
    for secret in ("13700002222", "电话未留", "吴婆", "陈伯", "440781195003020316", "440781194806110521"):
        assert secret not in text


def test_the_police_receive_the_bureaus_records_once_and_never_a_phone_number(walked: Walked) -> None:
    outbox = walked.home / "mailbox" / "police" / "outbox"
    [delivery] = sorted(outbox.glob("DELIVERY-*.csv.gpg"))
    decrypted = subprocess.run(
        ["gpg", "--homedir", str(walked.root / "police-keyring"), "--batch", "--status-fd", "2", "--decrypt", str(delivery)],
        capture_output=True, check=True,
    )
    assert b"GOODSIG" in decrypted.stderr
    text = decrypted.stdout.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["记录号", "版本", "变更", "死者姓名", "死者公民身份号码", "死亡日期", "报告日期", "经办机构"]
    assert sorted(row[4] for row in rows[1:]) == ["440781193511200410", "440781193804050137", "440781194208170225"]
    for phone in ("13812345678", "0750-5512345", "13900001111"):
        assert phone not in text
    assert "白沙派出所" not in text  # the police's own death record did not come back to them
    assert walked.output.count("没有需要补发的记录") == 1  # the second apply sent nothing
    assert "exchanges looked at: 2" in walked.output


def test_reconciliation_pairs_the_bureaus_report_with_the_polices_registration(walked: Walked) -> None:
    found = json.loads(walked.gateway("reconcile", "--rule", "pension-deaths-unregistered", "--json", "--as-of", "2026-12-05"))
    rule = found["rules"]["pension-deaths-unregistered"]
    assert rule["open"] == 2, rule  # 黄阿婆 and 李伯; 刘大爷's report matches the police's 死亡注销
