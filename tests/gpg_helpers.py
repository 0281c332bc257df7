"""A department's own GnuPG keyring for tests: generate keys, export them, sign drops."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path


class DepartmentKeyring:
    """A throw-away keyring at a short path (gpg-agent socket limits) with ed25519 keys."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="gwd", dir="/tmp"))
        self.home.chmod(0o700)

    def _gpg(self, *args: str, data: bytes | None = None) -> bytes:
        result = subprocess.run(
            ["gpg", "--homedir", str(self.home), "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", *args],
            input=data, capture_output=True, check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"gpg {' '.join(args)}: {result.stderr.decode(errors='replace')}")
        return result.stdout

    def new_key(self, name: str) -> str:
        self._gpg("--quick-gen-key", f"{name} <{name.lower().replace(' ', '.')}@example.org>", "ed25519", "sign", "never")
        listing = self._gpg("--with-colons", "--list-keys", f"{name}").decode()
        return [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")][0]

    def export(self, *fingerprints: str) -> bytes:
        return self._gpg("--armor", "--export", *fingerprints)

    def export_secret(self, fingerprint: str) -> bytes:
        return self._gpg("--armor", "--export-secret-keys", fingerprint)

    def sign(self, data: bytes, fingerprint: str) -> bytes:
        """A detached armored signature over `data` by the key."""
        return self._gpg("--armor", "--detach-sign", "--local-user", fingerprint, "--output", "-", data=data)

    def close(self) -> None:
        subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"], capture_output=True, check=False)
        shutil.rmtree(self.home, ignore_errors=True)
