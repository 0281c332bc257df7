"""The gateway as a service (作为服务运行): the systemd units `gateway install-service`
writes, checked by systemd's own `systemd-analyze verify` where this machine has it, the
shipped packaging/systemd/ files equal to them, and a wheel built by `python -m build`
that installs in a clean virtual environment and runs `gateway demo`.

Backend-independent: none of this touches the gateway database."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_gateway

from gateway.cli.service import DEFAULT_HOME, UNITS, ServiceSettings, render

pytestmark = pytest.mark.backend_independent

HARDENING = {
    "User": "gateway",
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "ProtectSystem": "strict",
    "Restart": "on-failure",
    "StandardOutput": "journal",
    "StandardError": "journal",
}


def options(text: str) -> dict[str, list[str]]:
    """`Key=value` lines of a unit, by key (a key may repeat)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_the_shipped_units_are_those_install_service_writes_for_the_default_home():
    for name, text in render(ServiceSettings(home=DEFAULT_HOME)).items():
        shipped = REPO / "packaging" / "systemd" / name
        assert shipped.read_text(encoding="utf-8") == text, f"{shipped} differs from the template: regenerate it"


def test_install_service_writes_units_for_a_home(home, tmp_path):
    dest = tmp_path / "units"
    done = run_gateway(home, "install-service", "--dest", str(dest), "--user", "gw-svc")
    for unit in UNITS:
        assert f"已写入 written: {dest / unit}" in done.stdout
    assert "sudo systemctl daemon-reload" in done.stdout and "sudo systemctl enable --now gateway-run.service gateway-serve.service" in done.stdout
    assert "PrivateTmp=yes hides" in done.stdout  # the suite's homes are under /tmp: said
    env_file = dest / "gateway.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600 and "GATEWAY_KEY_PASSPHRASE" in env_file.read_text()

    gateway = Path(sys.executable).parent / "gateway"
    commands = {"gateway-run.service": "run", "gateway-worker@.service": "worker", "gateway-serve.service": "serve"}
    for unit, command in commands.items():
        found = options((dest / unit).read_text(encoding="utf-8"))
        for key, value in {**HARDENING, "User": "gw-svc", "Group": "gw-svc"}.items():
            assert found[key] == [value], (unit, key, found.get(key))
        assert found["ReadWritePaths"] == [str(home.absolute())]
        assert found["ProtectHome"] == ["yes"] and found["EnvironmentFile"] == ["/etc/gateway/gateway.env"]
        assert found["ExecStart"][0].startswith(f"{gateway.absolute()} {command} --home {home.absolute()}")

    # Once more: the EnvironmentFile (it may hold the passphrase by now) is never overwritten.
    env_file.write_text("GATEWAY_KEY_PASSPHRASE=kept\n")
    again = run_gateway(home, "install-service", "--dest", str(dest))
    assert "已存在,未改动 kept as it was" in again.stdout and env_file.read_text() == "GATEWAY_KEY_PASSPHRASE=kept\n"

    analyze = shutil.which("systemd-analyze")
    if analyze is not None:  # this machine has systemd's own checker (Debian 12: systemd 252)
        instance = tmp_path / "instance"
        instance.mkdir()
        for unit in UNITS:
            shutil.copy(dest / unit, instance / unit.replace("@.", "@1."))
        verified = subprocess.run(
            [analyze, "verify", *sorted(str(p) for p in instance.iterdir())], capture_output=True, text=True, timeout=120
        )
        assert verified.returncode == 0 and verified.stderr.strip() == "", verified.stderr
        exposure = subprocess.run(
            [analyze, "security", "--offline=yes", str(instance / "gateway-run.service")], capture_output=True, text=True, timeout=120
        )
        level = re.search(r"Overall exposure level for gateway-run.service: ([\d.]+)", exposure.stdout + exposure.stderr)
        assert level and float(level.group(1)) < 4.0, exposure.stdout[-500:]


def test_a_home_outside_tmp_gets_protect_home_read_only_under_home():
    units = render(ServiceSettings(home=Path("/home/county/gateway"), mailbox=Path("/srv/mailbox")))
    found = options(units["gateway-serve.service"])
    assert found["ProtectHome"] == ["read-only"] and found["ReadWritePaths"] == ["/home/county/gateway /srv/mailbox"]
    assert "--host 127.0.0.1 --port 8400" in found["ExecStart"][0]


@pytest.mark.timeout(300)
def test_a_built_wheel_installs_in_a_clean_venv_and_runs_the_demo(tmp_path):
    # The source as git has it (no build/ or egg-info of this work tree), built apart from it.
    source = tmp_path / "src"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "gateway", "adapters", "contracts", "pyproject.toml", "README.md"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(source)], capture_output=True, text=True, timeout=240)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    [wheel] = dist.glob("*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True, timeout=240)
    assert installed.returncode == 0, installed.stderr[-2000:]
    clean = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    demo = subprocess.run([str(venv / "bin" / "gateway"), "demo", "--home", str(tmp_path / "demo-home")], capture_output=True, text=True, env=clean, cwd=tmp_path, timeout=240)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "gateway receipts verify" in demo.stdout
    # The unit templates travel in the wheel: install-service works from it.
    units = subprocess.run([str(venv / "bin" / "gateway"), "install-service", "--home", str(tmp_path / "demo-home"), "--dest", str(tmp_path / "u")],
                           capture_output=True, text=True, env=clean, timeout=120)
    assert units.returncode == 0 and (tmp_path / "u" / "gateway-run.service").exists(), units.stdout + units.stderr
