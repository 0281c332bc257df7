"""`gateway install-service` (作为服务运行): systemd units for `gateway run`, `gateway
worker` and `gateway serve`, filled in for one home, and the EnvironmentFile (mode 600)
that holds the signing key's passphrase.

The templates are gateway/cli/systemd/*.in; packaging/systemd/ holds them rendered for
the default home (/var/lib/gateway, user `gateway`), kept equal by tests/test_service.py.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

UNITS = ("gateway-run.service", "gateway-worker@.service", "gateway-serve.service")
ENV_FILE = Path("/etc/gateway/gateway.env")
SYSTEMD_DIR = Path("/etc/systemd/system")
DEFAULT_HOME = Path("/var/lib/gateway")
DEFAULT_GATEWAY = Path("/opt/gateway/bin/gateway")
# Under these systemd's ProtectHome=yes hides everything; a home there needs read-only instead.
HOME_TREES = (Path("/home"), Path("/root"), Path("/run/user"))


@dataclass(frozen=True)
class ServiceSettings:
    """What the units are filled in with."""

    home: Path
    user: str = "gateway"
    gateway: Path = DEFAULT_GATEWAY
    env_file: Path = ENV_FILE
    mailbox: Path | None = None
    """The mailbox root when it lies outside the home (it must be writable too)."""
    host: str = "127.0.0.1"
    port: int = 8400


def _template(name: str) -> Template:
    return Template(resources.files("gateway.cli").joinpath("systemd", f"{name}.in").read_text(encoding="utf-8"))


def _under(path: Path, trees: tuple[Path, ...]) -> bool:
    return any(path == tree or tree in path.parents for tree in trees)


def render(settings: ServiceSettings) -> dict[str, str]:
    """File name -> text: the three units and the EnvironmentFile's first contents."""
    writable = [settings.home]
    if settings.mailbox is not None and not _under(settings.mailbox, (settings.home,)):
        writable.append(settings.mailbox)
    values = {
        "home": str(settings.home),
        "user": settings.user,
        "gateway": str(settings.gateway),
        "env_file": str(settings.env_file),
        "host": settings.host,
        "port": str(settings.port),
        "protect_home": "read-only" if any(_under(p, HOME_TREES) for p in writable) else "yes",
        "read_write_paths": " ".join(str(p) for p in writable),
    }
    common = _template("common").substitute(values)
    files = {unit: _template(unit).substitute(values, common=common) for unit in UNITS}
    files[settings.env_file.name] = _template("gateway.env").substitute(values)
    return files


def gateway_command() -> Path:
    """The `gateway` command of this installation: beside the running Python (a virtual
    environment's bin/), else the one on PATH."""
    beside = Path(sys.executable).parent / "gateway"
    if beside.exists():
        return beside.absolute()
    found = shutil.which("gateway")
    return Path(found).absolute() if found else DEFAULT_GATEWAY


@dataclass(frozen=True)
class Written:
    units: list[Path]
    env_file: Path
    env_file_kept: bool
    """True when the EnvironmentFile was there already (never overwritten: it holds the passphrase)."""


def install(settings: ServiceSettings, dest: Path, env_dest: Path) -> Written:
    """Write the units into `dest` and, unless it exists, the EnvironmentFile as `env_dest` (mode 600)."""
    files = render(settings)
    dest.mkdir(parents=True, exist_ok=True)
    units = []
    for unit in UNITS:
        path = dest / unit
        path.write_text(files[unit], encoding="utf-8")
        path.chmod(0o644)
        units.append(path)
    kept = env_dest.exists()
    if not kept:
        env_dest.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(env_dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(files[settings.env_file.name])
    os.chmod(env_dest, 0o600)
    return Written(units, env_dest, kept)


def next_steps(settings: ServiceSettings, written: Written, *, dry_run: bool) -> list[str]:
    """The commands to run after the files are written, in order."""
    steps = []
    if dry_run:
        steps.append(f"sudo cp {' '.join(str(p) for p in written.units)} {SYSTEMD_DIR}/")
        steps.append(f"sudo install -D -m 600 -o root -g root {written.env_file} {settings.env_file}")
    steps += [
        f"sudo useradd --system --home-dir {settings.home} --shell /usr/sbin/nologin {settings.user}",
        f"sudo chown -R {settings.user}:{settings.user} {settings.home}",
        f"sudoedit {settings.env_file}   # GATEWAY_KEY_PASSPHRASE=…",
        "sudo systemctl daemon-reload",
        "sudo systemctl enable --now gateway-run.service gateway-serve.service",
        f"sudo systemd-run --wait --pipe --uid={settings.user} --gid={settings.user} -p EnvironmentFile={settings.env_file} "
        f"{settings.gateway} doctor --home {settings.home}",
        "journalctl -u gateway-run.service -f",
    ]
    return steps
