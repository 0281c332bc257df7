"""The gateway's signing key (GnuPG, through python-gnupg).

The private keyring lives in HOME/gnupg (mode 0700) and never leaves it. Its public half
and the key history (which fingerprint was valid when) are exported to HOME/keys, which
is all a verifier needs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import gnupg

from gateway.errors import SigningError

HISTORY_FILE = "history.json"


def gpg_binary() -> str:
    found = shutil.which("gpg")
    if not found:
        raise SigningError("GnuPG (gpg) is not installed. Run scripts/bootstrap, or apt-get install gnupg")
    return found


@dataclass
class KeyEntry:
    """One signing key in the gateway's key history."""

    fingerprint: str
    public_key_file: str
    valid_from: str
    valid_until: str | None = None


def read_history(keys_dir: Path) -> list[KeyEntry]:
    path = keys_dir / HISTORY_FILE
    if not path.exists():
        raise SigningError(f"No key history at {path}. Run `gateway init` first, or point --home at the gateway home")
    return [KeyEntry(**entry) for entry in json.loads(path.read_text(encoding="utf-8"))["keys"]]


def write_history(keys_dir: Path, entries: list[KeyEntry]) -> None:
    keys_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"keys": [asdict(e) for e in entries]}, ensure_ascii=False, indent=2) + "\n"
    tmp = keys_dir / (HISTORY_FILE + ".part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, keys_dir / HISTORY_FILE)


class Signer:
    """Signs receipts with the current key of the gateway's private keyring."""

    def __init__(self, gnupg_dir: Path, keys_dir: Path, passphrase: str | None = None):
        self.gnupg_dir, self.keys_dir, self.passphrase = gnupg_dir, keys_dir, passphrase
        self._gpg: gnupg.GPG | None = None
        self._fingerprint: str | None = None
        self._history_stamp: tuple[int, int] | None = None

    @property
    def gpg(self) -> gnupg.GPG:
        if self._gpg is None:
            self.gnupg_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._gpg = gnupg.GPG(gnupghome=str(self.gnupg_dir), gpgbinary=gpg_binary())
            self._gpg.encoding = "utf-8"
        return self._gpg

    @property
    def fingerprint(self) -> str:
        """The current key; the history is read again when it changed (`gateway keys rotate`
        in another process), so a running gateway never signs with a retired key."""
        try:
            info = (self.keys_dir / HISTORY_FILE).stat()
            stamp = (info.st_mtime_ns, info.st_size)
        except OSError:
            stamp = None
        if self._fingerprint is None or stamp != self._history_stamp:
            self._history_stamp = stamp
            current = [entry for entry in read_history(self.keys_dir) if entry.valid_until is None]
            if not current:
                raise SigningError(f"The key history in {self.keys_dir} has no current key")
            self._fingerprint = current[-1].fingerprint
        return self._fingerprint

    def create_key(self, name: str = "Interagency Data-Exchange Gateway", email: str = "gateway@localhost") -> str:
        """Make the first signing key and open its entry in the key history."""
        fingerprint, key_file = self.generate_key(name, email)
        try:
            entries = read_history(self.keys_dir)
        except SigningError:
            entries = []
        now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        entries.append(KeyEntry(fingerprint, key_file, valid_from=now))
        write_history(self.keys_dir, entries)
        self._fingerprint = None
        return fingerprint

    def generate_key(
        self, name: str = "Interagency Data-Exchange Gateway", email: str = "gateway@localhost"
    ) -> tuple[str, str]:
        """A new key in the private keyring, its public half exported to the keys folder;
        the key history is left alone. Returns the fingerprint and the public key file name."""
        params: dict[str, str | bool] = {
            "key_type": "EDDSA",
            "key_curve": "ed25519",
            "key_usage": "sign",
            "name_real": name,
            "name_email": email,
            "expire_date": "0",
        }
        if self.passphrase:
            params["passphrase"] = self.passphrase
        else:
            params["no_protection"] = True
        result = self.gpg.gen_key(self.gpg.gen_key_input(**params))
        if not result.fingerprint:
            raise SigningError(f"gpg could not create the signing key: {result.stderr.strip()[-500:]}")
        fingerprint = str(result.fingerprint)
        public = self.gpg.export_keys(fingerprint)
        key_file = f"gateway-{fingerprint[-16:]}.asc"
        self.keys_dir.mkdir(parents=True, exist_ok=True)
        (self.keys_dir / key_file).write_text(public, encoding="ascii")
        return fingerprint, key_file

    def sign(self, data: bytes, fingerprint: str | None = None) -> str:
        """A detached ASCII-armored signature over `data` by the current key (or, for a
        key handover, the named one)."""
        result = self.gpg.sign(
            data, keyid=fingerprint or self.fingerprint, passphrase=self.passphrase, detach=True, clearsign=False, binary=False,
            extra_args=["--digest-algo", "SHA256"],
        )
        if not result.data or getattr(result, "status", "") not in ("signature created", None):
            raise SigningError(
                "gpg could not sign: "
                + (result.stderr.strip().splitlines() or ["no output"])[-1]
                + ". Check GATEWAY_KEY_PASSPHRASE and the keyring in HOME/gnupg"
            )
        return str(result.data.decode("ascii"))

    def close(self) -> None:
        """Stop the gpg-agent this keyring started (tests make many homes)."""
        if self._gpg is not None and shutil.which("gpgconf"):
            subprocess.run(
                ["gpgconf", "--homedir", str(self.gnupg_dir), "--kill", "gpg-agent"],
                capture_output=True, check=False,
            )
